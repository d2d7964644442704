package console

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/kpi"
)

// The map of a rep's day is drawn by the server as SVG on a plain
// background: each customer's site with the check-in radius, each check-in
// numbered in visit order and joined to its site, the day's route through
// the check-ins. No map library, no tiles: it works air-gapped.
const (
	mapW, mapH, mapPad = 800, 560, 40
	metresPerDegLat    = 111320.0
)

type mapView struct {
	Rep, RepName, Day string
	Width, Height     int
	Sites             []mapSite
	Stops             []mapStop
	Route             string // SVG points of the route
	Empty             bool
}

type mapSite struct {
	Name    string
	X, Y, R float64
}

type mapStop struct {
	N                  int
	ID, Label, Check   string
	X, Y, SiteX, SiteY float64
	HasSite            bool
	Colour             string
}

func (cs *Console) mapPage(c *fiber.Ctx) error {
	oi, err := cs.org(c)
	if err != nil {
		return err
	}
	v := &mapView{Rep: strings.Clone(c.Query("rep")), Day: strings.Clone(c.Query("day")), Width: mapW, Height: mapH}
	if v.Day == "" {
		v.Day = cs.cfg.Now().In(oi.loc).Format("2006-01-02")
	}
	if v.Rep == "" {
		return errNotFound
	}
	v.RepName = oi.name(v.Rep)
	ctx, cancel := cs.callCtx()
	defer cancel()
	visits, err := cs.cfg.KPIs.Visits(ctx, actorOf(c), kpi.Query{Rep: v.Rep, From: v.Day, To: v.Day})
	if err != nil {
		return err
	}
	type point struct{ lat, lng float64 }
	type stop struct {
		id, customer, check string
		at                  *point
	}
	var stops []stop
	var custIDs []string
	for _, vis := range visits {
		var b visitBody
		json.Unmarshal(vis.Body, &b)
		s := stop{id: vis.ID, customer: b.CustomerID, check: b.Verification.Status}
		if b.CheckIn.Lat != nil && b.CheckIn.Lng != nil {
			s.at = &point{*b.CheckIn.Lat, *b.CheckIn.Lng}
		}
		stops = append(stops, s)
		custIDs = append(custIDs, b.CustomerID)
	}
	docs, err := cs.cfg.Workflow.Customers(ctx, actorOf(c), custIDs)
	if err != nil {
		return err
	}
	sites := map[string]*point{}
	names := map[string]string{}
	for id, b := range docs {
		var cust struct {
			Name     string
			Location *struct{ Lat, Lng float64 }
		}
		json.Unmarshal(b, &cust)
		names[id] = cust.Name
		if cust.Location != nil {
			sites[id] = &point{cust.Location.Lat, cust.Location.Lng}
		}
	}
	// The bounding box of every point, with the radius around the sites.
	minLat, maxLat, minLng, maxLng := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	grow := func(p *point) {
		if p != nil {
			minLat, maxLat = math.Min(minLat, p.lat), math.Max(maxLat, p.lat)
			minLng, maxLng = math.Min(minLng, p.lng), math.Max(maxLng, p.lng)
		}
	}
	for _, s := range stops {
		grow(s.at)
		grow(sites[s.customer])
	}
	if math.IsInf(minLat, 1) {
		v.Empty = true
		return cs.render(c, "map", view{Title: "Map of " + v.RepName + "'s day", User: userOf(c), CSRF: csrfOf(c), Data: v})
	}
	radiusDeg := cs.cfg.VisitRadius / metresPerDegLat
	minLat, maxLat = minLat-radiusDeg, maxLat+radiusDeg
	cosLat := math.Cos((minLat + maxLat) / 2 * math.Pi / 180)
	minLng, maxLng = minLng-radiusDeg/cosLat, maxLng+radiusDeg/cosLat
	// One scale for both axes (equirectangular at the box's latitude).
	spanX, spanY := (maxLng-minLng)*cosLat, maxLat-minLat
	scale := math.Min(float64(mapW-2*mapPad)/math.Max(spanX, 1e-9), float64(mapH-2*mapPad)/math.Max(spanY, 1e-9))
	project := func(p point) (float64, float64) {
		return round1(mapPad + (p.lng-minLng)*cosLat*scale), round1(mapH - mapPad - (p.lat-minLat)*scale)
	}
	drawn := map[string]bool{}
	var route []string
	for i, s := range stops {
		st := mapStop{N: i + 1, ID: s.id, Label: firstNonEmpty(names[s.customer], s.customer), Check: strings.ReplaceAll(s.check, "_", " "),
			Colour: "#a4161a"}
		if s.check == "verified" {
			st.Colour = "#1a7f37"
		}
		if site := sites[s.customer]; site != nil {
			st.SiteX, st.SiteY = project(*site)
			st.HasSite = true
			if !drawn[s.customer] {
				drawn[s.customer] = true
				v.Sites = append(v.Sites, mapSite{Name: st.Label, X: st.SiteX, Y: st.SiteY, R: round1(math.Max(radiusDeg*scale, 3))})
			}
		}
		if s.at == nil {
			st.X, st.Y = st.SiteX, st.SiteY // no GPS: shown at the site, marked
		} else {
			st.X, st.Y = project(*s.at)
			route = append(route, fmt.Sprintf("%g,%g", st.X, st.Y))
		}
		v.Stops = append(v.Stops, st)
	}
	v.Route = strings.Join(route, " ")
	return cs.render(c, "map", view{Title: "Map of " + v.RepName + "'s day", User: userOf(c), CSRF: csrfOf(c), Data: v})
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
