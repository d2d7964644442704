package webhook_test

import (
	"errors"
	"testing"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/webhook"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		url      string
		loopback bool
		ok       bool
	}{
		{"https://erp.example.com/hooks/fieldsync", false, true},
		{"https://93.184.216.34/hook", false, true},
		{"http://erp.example.com/hook", false, false},
		{"http://erp.example.com/hook", true, false},
		{"http://127.0.0.1:8080/hook", false, false},
		{"http://127.0.0.1:8080/hook", true, true},
		{"http://localhost:8080/hook", true, true},
		{"https://localhost/hook", false, false},
		{"http://[::1]:9/hook", true, true},
		{"https://169.254.169.254/latest/meta-data", true, false},
		{"https://[fe80::1]/hook", true, false},
		{"https://10.0.0.5/hook", true, false},
		{"https://192.168.1.1/hook", false, false},
		{"https://172.16.0.1/hook", false, false},
		{"https://[fd00::1]/hook", false, false},
		{"https://0.0.0.0/hook", true, false},
		{"https://100.64.0.1/hook", false, false},
		{"https://[::ffff:169.254.169.254]/hook", false, false},
		{"https://user:pw@erp.example.com/hook", false, false},
		{"ftp://erp.example.com/hook", false, false},
		{"erp.example.com/hook", false, false},
		{"", false, false},
	}
	for _, c := range cases {
		err := webhook.CheckURL(c.url, c.loopback)
		if (err == nil) != c.ok {
			t.Errorf("CheckURL(%q, loopback %v) = %v, want ok %v", c.url, c.loopback, err, c.ok)
		}
		var e *engine.Error
		if err != nil && (!errors.As(err, &e) || e.Code != webhook.CodeURLNotAllowed || e.Pointer != "/url") {
			t.Errorf("CheckURL(%q): %v, want %s at /url", c.url, err, webhook.CodeURLNotAllowed)
		}
	}
	dial := webhook.DialControl(false)
	for addr, ok := range map[string]bool{"93.184.216.34:443": true, "169.254.169.254:80": false, "127.0.0.1:443": false, "10.1.2.3:443": false} {
		if err := dial("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("DialControl(%s) = %v, want ok %v", addr, err, ok)
		}
	}
}
