module kaudit.test/k3s-standin

go 1.19
