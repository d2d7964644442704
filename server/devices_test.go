package server_test

import (
	"strings"
	"testing"
)

// TestDevicesRefuseBadRequests: registering a push device checks each
// field, and a device of another user, or of another organisation, is not
// found.
func TestDevicesRefuseBadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rob := f.token(t, "acme", "rob", "rep")
	ann := f.token(t, "acme", "ann", "admin")
	oz := f.token(t, "other", "oz", "admin")
	f.check(t, []errorCase{
		{"no token", "POST", "/v1/devices", "", `{}`, 401, "unauthenticated", ""},
		{"no device id on a token without a session", "POST", "/v1/devices", rob, `{"token":"t","platform":"android","app_version":"1.0"}`, 400, "invalid_request", "/device_id"},
		{"device id with a slash", "POST", "/v1/devices", rob, `{"device_id":"a/b","token":"t","platform":"android","app_version":"1.0"}`, 400, "invalid_request", "/device_id"},
		{"no FCM token", "POST", "/v1/devices", rob, `{"device_id":"p-1","platform":"android","app_version":"1.0"}`, 400, "invalid_request", "/token"},
		{"FCM token too long", "POST", "/v1/devices", rob, `{"device_id":"p-1","token":"` + strings.Repeat("t", 4097) + `","platform":"android","app_version":"1.0"}`, 400, "invalid_request", "/token"},
		{"unknown platform", "POST", "/v1/devices", rob, `{"device_id":"p-1","token":"t","platform":"symbian","app_version":"1.0"}`, 400, "invalid_request", "/platform"},
		{"no app version", "POST", "/v1/devices", rob, `{"device_id":"p-1","token":"t","platform":"ios"}`, 400, "invalid_request", "/app_version"},
		{"unknown field", "POST", "/v1/devices", rob, `{"device_id":"p-1","token":"t","platform":"ios","app_version":"1.0","imei":"1"}`, 400, "invalid_request", "/imei"},
		{"register", "POST", "/v1/devices", rob, `{"device_id":"p-1","token":"t","platform":"ios","app_version":"1.0"}`, 200, "", ""},
		{"another user's device", "DELETE", "/v1/devices/p-1", ann, "", 404, "not_found", ""},
		{"another organisation's device", "DELETE", "/v1/devices/p-1", oz, "", 404, "not_found", ""},
		{"own device", "DELETE", "/v1/devices/p-1", rob, "", 204, "", ""},
		{"own device again", "DELETE", "/v1/devices/p-1", rob, "", 404, "not_found", ""},
	})
}
