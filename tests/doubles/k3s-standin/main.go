// Command k3s is a STAND-IN for the k3s binary, for pytest-kaudit's tests only.
//
// It is not k3s. It lets the k3s backend's real testcontainers code path run against a
// real Docker engine where no k3s image can be had: it accepts `k3s server` with the
// arguments the backend passes, and maps them onto a real etcd and a real kube-apiserver
// shipped in the same image. What it reproduces of k3s is only what the backend relies on:
//
//   - the kubeconfig at /etc/rancher/k3s/k3s.yaml, naming https://127.0.0.1:6443;
//   - the client CA at /var/lib/rancher/k3s/server/tls/client-ca.{crt,key};
//   - the serving certificate valid for every --tls-san;
//   - each --kube-apiserver-arg=key=value passed to kube-apiserver as --key=value, on top
//     of (and overriding) the defaults, as k3s does;
//   - the log line testcontainers' K3SContainer waits for, printed once /readyz answers;
//   - the one controller the backend's readiness needs: every namespace gets its
//     `default` ServiceAccount, referencing a token Secret (the ServiceAccount admission
//     plugin of 1.20 refuses pods until it has one).
//
// No kubelet, scheduler or controller-manager runs. Invoked as `cat` (a symlink), it
// prints files, so `docker exec <id> cat <file>` works in an image without a shell.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	tlsDir     = "/var/lib/rancher/k3s/server/tls"
	dataDir    = "/var/lib/rancher/k3s/server/db/etcd"
	kubeconfig = "/etc/rancher/k3s/k3s.yaml"
	server     = "https://127.0.0.1:6443"
	// readyLine is what testcontainers' K3SContainer waits for in the container log.
	readyLine = "Node controller sync successful"
	// serviceAccountDelayEnv delays the ServiceAccount controller (a Go duration, e.g. 8s).
	serviceAccountDelayEnv = "K3S_STANDIN_SERVICEACCOUNT_DELAY"
)

func main() {
	if filepath.Base(os.Args[0]) == "cat" {
		os.Exit(cat(os.Args[1:]))
	}
	if len(os.Args) < 2 || os.Args[1] != "server" {
		fail("usage: k3s server [--disable NAME] [--tls-san=NAME] [--kube-apiserver-arg=KEY=VALUE]...\n" +
			"(this is a test stand-in for k3s: only `server` is implemented)")
	}
	sans, apiArgs, err := parseServer(os.Args[2:])
	if err != nil {
		fail(err.Error())
	}
	if err := run(sans, apiArgs); err != nil {
		fail("k3s STAND-IN: " + err.Error())
	}
}

// parseServer reads the `k3s server` flags the backend passes; any other flag is refused,
// so a change in what the backend passes is noticed here rather than silently ignored.
func parseServer(args []string) (sans []string, apiArgs [][2]string, err error) {
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		switch name {
		case "--disable", "--tls-san", "--kube-apiserver-arg":
		default:
			return nil, nil, fmt.Errorf("k3s stand-in: unsupported argument %q (accepted: "+
				"--disable, --tls-san, --kube-apiserver-arg)", args[i])
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("k3s stand-in: %s needs a value", name)
			}
			i++
			value = args[i]
		}
		switch name {
		case "--tls-san":
			sans = append(sans, value)
		case "--kube-apiserver-arg":
			key, v, ok := strings.Cut(strings.TrimLeft(value, "-"), "=")
			if !ok {
				return nil, nil, fmt.Errorf("k3s stand-in: --kube-apiserver-arg %q is not KEY=VALUE", value)
			}
			apiArgs = append(apiArgs, [2]string{key, v})
		}
		// --disable names k3s add-ons (traefik); none is deployed here, so nothing to do.
	}
	return sans, apiArgs, nil
}

func run(sans []string, apiArgs [][2]string) error {
	pki, err := writePKI(sans)
	if err != nil {
		return err
	}
	etcd := start("/usr/local/bin/etcd",
		"--name=standin", "--data-dir="+dataDir,
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=standin=http://127.0.0.1:2380", "--log-level=warn")
	// Defaults in the spirit of k3s's own; the user's --kube-apiserver-arg values win.
	flags := [][2]string{
		{"etcd-servers", "http://127.0.0.1:2379"},
		{"bind-address", "0.0.0.0"},
		{"secure-port", "6443"},
		{"tls-cert-file", tlsDir + "/serving-kube-apiserver.crt"},
		{"tls-private-key-file", tlsDir + "/serving-kube-apiserver.key"},
		{"client-ca-file", tlsDir + "/client-ca.crt"},
		{"anonymous-auth", "false"},
		{"authorization-mode", "Node,RBAC"},
		{"allow-privileged", "true"},
		{"enable-admission-plugins", "NodeRestriction"},
		{"service-account-issuer", "https://kubernetes.default.svc.cluster.local"},
		{"service-account-key-file", tlsDir + "/service.key"},
		{"service-account-signing-key-file", tlsDir + "/service.key"},
		{"api-audiences", "https://kubernetes.default.svc.cluster.local,k3s"},
		{"service-cluster-ip-range", "10.43.0.0/16"},
	}
	argv := []string{}
	for _, f := range override(flags, apiArgs) {
		argv = append(argv, "--"+f[0]+"="+f[1])
	}
	apiserver := start("/usr/local/bin/kube-apiserver", argv...)

	client := pki.client()
	exited := make(chan error, 2)
	go func() { exited <- fmt.Errorf("etcd exited: %v", etcd.Wait()) }()
	go func() { exited <- fmt.Errorf("kube-apiserver exited: %v", apiserver.Wait()) }()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	go func() {
		waitReady(client)
		logf("k3s STAND-IN: kube-apiserver answers /readyz (this is not k3s)")
		logf(readyLine)
		// Tests may hold the controller back, as a busy controller-manager would be, to
		// show that the backend's readiness waits for the account rather than racing it.
		if delay, err := time.ParseDuration(os.Getenv(serviceAccountDelayEnv)); err == nil {
			time.Sleep(delay)
		}
		serviceAccounts(client, pki.caPEM)
	}()
	select {
	case err := <-exited:
		kill(etcd, apiserver)
		return err
	case sig := <-stop:
		logf("k3s STAND-IN: %v, stopping", sig)
		kill(etcd, apiserver)
		return nil
	}
}

// override applies KEY=VALUE pairs over defaults: same key replaced in place, new keys appended.
func override(defaults, extra [][2]string) [][2]string {
	out := append([][2]string{}, defaults...)
	for _, e := range extra {
		found := false
		for i := range out {
			if out[i][0] == e[0] {
				out[i][1], found = e[1], true
			}
		}
		if !found {
			out = append(out, e)
		}
	}
	return out
}

func start(path string, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fail(fmt.Sprintf("k3s stand-in: cannot start %s: %v", path, err))
	}
	return cmd
}

func kill(cmds ...*exec.Cmd) {
	for _, c := range cmds {
		if c.Process != nil {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
	}
}

// waitReady polls /readyz with the admin certificate (anonymous requests are refused).
func waitReady(client *http.Client) {
	for {
		resp, err := client.Get(server + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serviceAccounts is the stand-in's only controller: it gives every namespace its `default`
// ServiceAccount, with a token Secret referenced (what kube-controller-manager's
// ServiceAccount and token controllers do). It polls the namespace list; a namespace is
// done once its account references a Secret.
func serviceAccounts(client *http.Client, caPEM []byte) {
	done := map[string]bool{} // namespace uid
	for {
		var list struct {
			Items []struct {
				Metadata struct{ Name, UID string }
				Status   struct{ Phase string }
			}
		}
		if err := call(client, "GET", "/api/v1/namespaces", "", nil, &list); err != nil {
			logf("k3s STAND-IN: listing namespaces: %v", err)
		}
		for _, ns := range list.Items {
			if done[ns.Metadata.UID] || ns.Status.Phase == "Terminating" {
				continue
			}
			if err := ensureAccount(client, ns.Metadata.Name, caPEM); err != nil {
				logf("k3s STAND-IN: default ServiceAccount of %s: %v", ns.Metadata.Name, err)
				continue
			}
			done[ns.Metadata.UID] = true
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type account struct {
	Metadata struct{ UID string }
	Secrets  []struct{ Name string }
}

func ensureAccount(client *http.Client, ns string, caPEM []byte) error {
	base := "/api/v1/namespaces/" + ns
	var sa account
	err := call(client, "GET", base+"/serviceaccounts/default", "", nil, &sa)
	if err == errNotFound {
		err = call(client, "POST", base+"/serviceaccounts", "application/json",
			map[string]any{"metadata": map[string]any{"name": "default"}}, &sa)
	}
	if err != nil || len(sa.Secrets) > 0 {
		return err
	}
	// The Secret the admission plugin looks for: type service-account-token, annotated with
	// the account's name and uid. It carries no token: nothing here signs or mounts one.
	var secret struct{ Metadata struct{ Name string } }
	err = call(client, "POST", base+"/secrets", "application/json", map[string]any{
		"metadata": map[string]any{
			"generateName": "default-token-",
			"annotations": map[string]string{
				"kubernetes.io/service-account.name": "default",
				"kubernetes.io/service-account.uid":  sa.Metadata.UID,
			},
		},
		"type": "kubernetes.io/service-account-token",
		"data": map[string]string{
			"ca.crt":    base64.StdEncoding.EncodeToString(caPEM),
			"namespace": base64.StdEncoding.EncodeToString([]byte(ns)),
		},
	}, &secret)
	if err != nil {
		return err
	}
	return call(client, "PATCH", base+"/serviceaccounts/default", "application/merge-patch+json",
		map[string]any{"secrets": []map[string]string{{"name": secret.Metadata.Name}}}, nil)
}

var errNotFound = fmt.Errorf("not found")

func call(client *http.Client, method, path, contentType string, body, out any) error {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, server+path, reader)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errNotFound
	case resp.StatusCode >= 300:
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(data[:min(len(data), 300)]))
	case out != nil:
		return json.Unmarshal(data, out)
	}
	return nil
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// --- PKI: the CAs, the serving certificate, the admin client and the kubeconfig ---

type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

type standinPKI struct {
	caPEM               []byte // serving CA (server-ca.crt)
	adminCert, adminKey []byte // system:admin in system:masters, signed by the client CA
}

func (p *standinPKI) client() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	pair, err := tls.X509KeyPair(p.adminCert, p.adminKey)
	if err != nil {
		fail("k3s stand-in: admin key pair: " + err.Error())
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12,
		}},
	}
}

func writePKI(sans []string) (*standinPKI, error) {
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return nil, err
	}
	serverCA, err := issue(pkix.Name{CommonName: "k3s-server-ca"}, nil, true, nil)
	if err != nil {
		return nil, err
	}
	clientCA, err := issue(pkix.Name{CommonName: "k3s-client-ca"}, nil, true, nil)
	if err != nil {
		return nil, err
	}
	serving, err := issue(pkix.Name{CommonName: "kube-apiserver"}, serverCA, false,
		append([]string{"127.0.0.1", "localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "10.43.0.1"}, sans...))
	if err != nil {
		return nil, err
	}
	admin, err := issue(pkix.Name{CommonName: "system:admin", Organization: []string{"system:masters"}},
		clientCA, false, nil)
	if err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"server-ca.crt": certPEM(serverCA), "server-ca.key": keyPEM(serverCA.key),
		"client-ca.crt": certPEM(clientCA), "client-ca.key": keyPEM(clientCA.key),
		"serving-kube-apiserver.crt": certPEM(serving), "serving-kube-apiserver.key": keyPEM(serving.key),
		"client-admin.crt": certPEM(admin), "client-admin.key": keyPEM(admin.key),
		"service.key": keyPEM(saKey),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tlsDir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	p := &standinPKI{caPEM: certPEM(serverCA), adminCert: certPEM(admin), adminKey: keyPEM(admin.key)}
	b64 := base64.StdEncoding.EncodeToString
	config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: %s
    server: %s
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
users:
- name: default
  user:
    client-certificate-data: %s
    client-key-data: %s
`, b64(p.caPEM), server, b64(p.adminCert), b64(p.adminKey))
	if err := os.MkdirAll(filepath.Dir(kubeconfig), 0o755); err != nil {
		return nil, err
	}
	return p, os.WriteFile(kubeconfig, []byte(config), 0o600)
}

// issue makes an ECDSA P-256 certificate: a CA when isCA, else a leaf signed by parent
// (server auth when it has names, client auth otherwise).
func issue(subject pkix.Name, parent *keyPair, isCA bool, names []string) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: subject,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: isCA,
	}
	switch {
	case isCA:
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	case len(names) > 0:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	default:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return &keyPair{cert: cert, key: key}, err
}

func certPEM(k *keyPair) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.cert.Raw})
}

func keyPEM(key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		fail("k3s stand-in: " + err.Error())
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// --- small helpers ---

func cat(paths []string) int {
	code := 0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cat:", err)
			code = 1
			continue
		}
		os.Stdout.Write(data)
	}
	return code
}

// logf prints a line in k3s's (logrus) format.
func logf(format string, args ...any) {
	fmt.Printf("time=%q level=info msg=%q\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(1)
}
