package server

import (
	"errors"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// statusOf is the one mapping from error kinds to HTTP statuses.
func statusOf(k engine.Kind) int {
	switch k {
	case engine.KindInvalid:
		return fiber.StatusBadRequest
	case engine.KindUnauthorized:
		return fiber.StatusUnauthorized
	case engine.KindForbidden:
		return fiber.StatusForbidden
	case engine.KindNotFound:
		return fiber.StatusNotFound
	case engine.KindConflict:
		return fiber.StatusConflict
	case engine.KindTooLarge:
		return fiber.StatusRequestEntityTooLarge
	case engine.KindRateLimited:
		return fiber.StatusTooManyRequests
	case engine.KindUnavailable:
		return fiber.StatusServiceUnavailable
	default:
		return fiber.StatusInternalServerError
	}
}

// fromFiber turns Fiber's own errors (no route, body too large, wrong
// method) into domain errors, so every error body has the same shape;
// maxBody is the body limit, which the client is told.
func fromFiber(fe *fiber.Error, maxBody int) *engine.Error {
	switch fe.Code {
	case fiber.StatusNotFound:
		return engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no such endpoint")
	case fiber.StatusRequestEntityTooLarge:
		return engine.Errorf(engine.KindTooLarge, engine.CodeBodyTooLarge, "", "the request body exceeds the server's limit of %d bytes", maxBody)
	case fiber.StatusMethodNotAllowed:
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "", "method not allowed")
	}
	if fe.Code >= 400 && fe.Code < 500 {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "", "%s", fe.Message)
	}
	return &engine.Error{Kind: engine.KindInternal, Code: engine.CodeInternal, Message: "internal error", Err: fe}
}

// handleError is Fiber's ErrorHandler: every error of every route ends here.
// Internal errors are logged with the request id and shown to the client only
// as "internal error" plus that id.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var de *engine.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &de):
	case errors.As(err, &fe):
		de = fromFiber(fe, s.cfg.MaxBody)
	default:
		de = &engine.Error{Kind: engine.KindInternal, Code: engine.CodeInternal, Message: "internal error", Err: err}
	}
	status := statusOf(de.Kind)
	if fe != nil && fe.Code == fiber.StatusMethodNotAllowed {
		status = fiber.StatusMethodNotAllowed
	}
	body := de.Body()
	c.Locals(errorCodeKey, body.Code)
	body.RequestID = requestID(c)
	if body.RequestID == "" {
		// Errors raised before any middleware ran (a body over the limit is
		// refused while reading the request) still get an id to quote.
		body.RequestID = utils.UUIDv4()
		c.Set(fiber.HeaderXRequestID, body.RequestID)
	}
	switch {
	case de.Kind == engine.KindInternal:
		body.Message = "internal error"
		s.log.Error("internal error", "request_id", body.RequestID, "method", c.Method(), "path", c.Path(), "err", err)
	case de.Kind == engine.KindUnavailable:
		s.log.Warn("unavailable", "request_id", body.RequestID, "path", c.Path(), "err", err)
	}
	if status == fiber.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="fieldsync"`)
	}
	return c.Status(status).JSON(fiber.Map{"error": body})
}
