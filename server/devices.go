package server

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/push"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Devices is the part of the push store behind the device, notification
// preference and quiet-hours routes (docs/push.md).
type Devices interface {
	PutDevice(ctx context.Context, d push.Device) error
	Devices(ctx context.Context, org, user string) ([]push.Device, error)
	DeleteDevice(ctx context.Context, org, user, id string) (bool, error)
	PutPrefs(ctx context.Context, org, user string, p push.Prefs) error
	Prefs(ctx context.Context, org, user string) (push.Prefs, error)
	PutQuietHours(ctx context.Context, org string, q push.QuietHours) error
	QuietHours(ctx context.Context, org string) (push.QuietHours, error)
}

// deviceRoutes registers the push routes when Config.Devices is set.
func (s *Server) deviceRoutes(v1 fiber.Router) {
	if s.cfg.Devices == nil {
		return
	}
	v1.Post("/devices", s.authenticate, s.putDevice)
	v1.Get("/devices", s.authenticate, s.listDevices)
	v1.Delete("/devices/:id", s.authenticate, s.deleteDevice)
	v1.Get("/me/notifications", s.authenticate, s.getPrefs)
	v1.Put("/me/notifications", s.authenticate, s.putPrefs)
	if s.cfg.Admin != nil {
		admin := v1.Group("/admin", s.authenticate, s.requireAdmin)
		admin.Get("/org/quiet-hours", s.getQuietHours)
		admin.Put("/org/quiet-hours", s.putQuietHours)
	}
}

type deviceRequest struct {
	DeviceID   string `json:"device_id"`
	Token      string `json:"token"`
	Platform   string `json:"platform"`
	AppVersion string `json:"app_version"`
}

type deviceJSON struct {
	ID         string    `json:"id"`
	Platform   string    `json:"platform"`
	AppVersion string    `json:"app_version"`
	Updated    time.Time `json:"updated"`
}

var (
	deviceIDPattern   = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
	appVersionPattern = regexp.MustCompile(`^[A-Za-z0-9_.+-]{1,32}$`)
)

// maxTokenLen bounds an FCM registration token (about 160 characters today).
const maxTokenLen = 4096

func invalid(ptr, format string, args ...any) error {
	return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, ptr, format, args...)
}

// putDevice registers or refreshes the caller's device: POST /v1/devices.
// The device id defaults to the one the caller signed in with.
func (s *Server) putDevice(c *fiber.Ctx) error {
	var req deviceRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	if req.DeviceID == "" && s.cfg.Sessions != nil {
		tok, _ := bearerToken(c.Get(fiber.HeaderAuthorization))
		if _, dev, err := s.cfg.Sessions.SessionOf(tok); err == nil {
			req.DeviceID = dev
		}
	}
	switch {
	case req.DeviceID == "":
		return invalid("/device_id", "device_id is required when the token was not issued to a device")
	case !deviceIDPattern.MatchString(req.DeviceID):
		return invalid("/device_id", "device_id must be 1-128 characters of A-Z a-z 0-9 _ . : -")
	case req.Token == "":
		return invalid("/token", "token (the FCM registration token) is required")
	case len(req.Token) > maxTokenLen:
		return invalid("/token", "token is longer than %d bytes", maxTokenLen)
	case !slices.Contains([]string{push.PlatformAndroid, push.PlatformIOS, push.PlatformWeb}, req.Platform):
		return invalid("/platform", "platform must be android, ios or web")
	case req.AppVersion == "":
		return invalid("/app_version", "app_version is required")
	case !appVersionPattern.MatchString(req.AppVersion):
		return invalid("/app_version", "app_version must be 1-32 characters of A-Z a-z 0-9 _ . + -")
	}
	a := actorOf(c)
	d := push.Device{Org: a.Org, User: a.User, ID: req.DeviceID, Token: req.Token, Platform: req.Platform,
		AppVersion: req.AppVersion, Updated: s.cfg.Now().UTC().Truncate(time.Millisecond)}
	ctx, cancel := s.callCtx()
	defer cancel()
	if err := s.cfg.Devices.PutDevice(ctx, d); err != nil {
		return err
	}
	return c.JSON(deviceOf(d))
}

func deviceOf(d push.Device) deviceJSON {
	return deviceJSON{ID: d.ID, Platform: d.Platform, AppVersion: d.AppVersion, Updated: d.Updated.UTC()}
}

func (s *Server) listDevices(c *fiber.Ctx) error {
	a := actorOf(c)
	ctx, cancel := s.callCtx()
	defer cancel()
	ds, err := s.cfg.Devices.Devices(ctx, a.Org, a.User)
	if err != nil {
		return err
	}
	out := []deviceJSON{}
	for _, d := range ds {
		out = append(out, deviceOf(d))
	}
	return c.JSON(fiber.Map{"devices": out})
}

// deleteDevice removes one of the caller's devices; any other id, another
// user's included, is not found.
func (s *Server) deleteDevice(c *fiber.Ctx) error {
	a := actorOf(c)
	id := param(c, "id")
	ctx, cancel := s.callCtx()
	defer cancel()
	ok, err := s.cfg.Devices.DeleteDevice(ctx, a.Org, a.User, id)
	if err != nil {
		return err
	}
	if !ok {
		return engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no device %q", id)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// forgetDevice removes a device's token when its session ends (logout, an
// admin's revocation), so pushes stop reaching a phone nobody is signed in
// on. It is best effort: the session is already gone.
func (s *Server) forgetDevice(org, user, device string) {
	if s.cfg.Devices == nil || device == "" {
		return
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	if _, err := s.cfg.Devices.DeleteDevice(ctx, org, user, device); err != nil {
		s.log.Warn("forget push device", "org", org, "user", user, "device", device, "err", err)
	}
}

type prefsJSON struct {
	Muted []string `json:"muted"`
}

func (s *Server) getPrefs(c *fiber.Ctx) error {
	a := actorOf(c)
	ctx, cancel := s.callCtx()
	defer cancel()
	p, err := s.cfg.Devices.Prefs(ctx, a.Org, a.User)
	if err != nil {
		return err
	}
	return c.JSON(prefsReply(p))
}

func prefsReply(p push.Prefs) fiber.Map {
	return fiber.Map{"muted": nonNil(p.Muted), "categories": push.Categories}
}

// putPrefs sets the caller's muted categories: PUT /v1/me/notifications.
func (s *Server) putPrefs(c *fiber.Ctx) error {
	var req prefsJSON
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	if req.Muted == nil {
		return invalid("/muted", "muted (a list of categories, possibly empty) is required")
	}
	for i, cat := range req.Muted {
		if !slices.Contains(push.Categories, cat) {
			return invalid(fmt.Sprintf("/muted/%d", i), "unknown category %q; categories are %v", cat, push.Categories)
		}
	}
	slices.Sort(req.Muted)
	p := push.Prefs{Muted: slices.Compact(req.Muted)}
	a := actorOf(c)
	ctx, cancel := s.callCtx()
	defer cancel()
	if err := s.cfg.Devices.PutPrefs(ctx, a.Org, a.User, p); err != nil {
		return err
	}
	return c.JSON(prefsReply(p))
}

type quietJSON struct {
	Start *string `json:"start"` // "22:00"; null turns quiet hours off
	End   *string `json:"end"`
}

func clockText(m int) *string {
	s := fmt.Sprintf("%02d:%02d", m/60, m%60)
	return &s
}

func quietReply(q push.QuietHours) quietJSON {
	if !q.Enabled() {
		return quietJSON{}
	}
	return quietJSON{Start: clockText(q.Start), End: clockText(q.End)}
}

func (s *Server) getQuietHours(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	q, err := s.cfg.Devices.QuietHours(ctx, actorOf(c).Org)
	if err != nil {
		return err
	}
	return c.JSON(quietReply(q))
}

// putQuietHours sets the organisation's quiet hours (local time of the
// organisation's time zone): PUT /v1/admin/org/quiet-hours.
func (s *Server) putQuietHours(c *fiber.Ctx) error {
	var req quietJSON
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	var q push.QuietHours
	if (req.Start == nil) != (req.End == nil) {
		return invalid("/end", "start and end are both set or both null")
	}
	if req.Start != nil {
		var err error
		if q.Start, err = minutes(*req.Start, "/start"); err != nil {
			return err
		}
		if q.End, err = minutes(*req.End, "/end"); err != nil {
			return err
		}
		if !q.Enabled() {
			return invalid("/end", "end must differ from start; send nulls to turn quiet hours off")
		}
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	if err := s.cfg.Devices.PutQuietHours(ctx, actorOf(c).Org, q); err != nil {
		return err
	}
	return c.JSON(quietReply(q))
}

var clockPattern = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)

func minutes(v, ptr string) (int, error) {
	m := clockPattern.FindStringSubmatch(v)
	if m == nil {
		return 0, invalid(ptr, "%s must be a local time HH:MM (00:00 to 23:59)", ptr[1:])
	}
	h := int(m[1][0]-'0')*10 + int(m[1][1]-'0')
	mi := int(m[2][0]-'0')*10 + int(m[2][1]-'0')
	return h*60 + mi, nil
}
