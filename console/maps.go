package console

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/kpi"
)

// The map of a rep's day is drawn by the server as SVG: each customer's
// site with the check-in radius, each check-in numbered in visit order and
// joined to its site, the day's route through the check-ins. Points are
// placed in Web Mercator, the projection of map tiles: with a tile server
// configured (Config.Tiles) the tiles of the view lie under them, without
// one the background is plain and the page works air-gapped.
const (
	mapW, mapH, mapPad = 800, 560, 40
	metresPerDegLat    = 111320.0
	tileSize           = 256
	maxZoom            = 19
	// metresPerPixel0 is the ground resolution of zoom 0 at the equator.
	metresPerPixel0 = 156543.03392
)

// mercator returns the point's position in pixels of the zoom-0 world
// (256 px wide).
func mercator(lat, lng float64) (x, y float64) {
	lat = math.Max(-85.05112878, math.Min(85.05112878, lat))
	r := lat * math.Pi / 180
	x = (lng + 180) / 360 * tileSize
	y = (1 - math.Log(math.Tan(r)+1/math.Cos(r))/math.Pi) / 2 * tileSize
	return x, y
}

type mapTile struct {
	URL        string
	X, Y, Size float64
}

type mapView struct {
	Rep, RepName, Day string
	Width, Height     int
	Sites             []mapSite
	Stops             []mapStop
	Route             string // SVG points of the route
	Tiles             []mapTile
	Attribution       string
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
		if b.CheckIn != nil && b.CheckIn.Lat != nil && b.CheckIn.Lng != nil {
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
	// The zoom that fits the box: any with a plain background, a whole one
	// under tiles.
	x0, y0 := mercator(maxLat, minLng)
	x1, y1 := mercator(minLat, maxLng)
	zoom := math.Log2(math.Min(float64(mapW-2*mapPad)/math.Max(x1-x0, 1e-12), float64(mapH-2*mapPad)/math.Max(y1-y0, 1e-12)))
	zoom = math.Min(zoom, maxZoom)
	if cs.cfg.Tiles != "" {
		zoom = math.Floor(zoom)
	}
	scale := math.Exp2(zoom)
	// The box centred in the view.
	offX := float64(mapW)/2 - (x0+x1)/2*scale
	offY := float64(mapH)/2 - (y0+y1)/2*scale
	project := func(p point) (float64, float64) {
		x, y := mercator(p.lat, p.lng)
		return round1(x*scale + offX), round1(y*scale + offY)
	}
	radiusPx := cs.cfg.VisitRadius / (metresPerPixel0 * cosLat / scale)
	if cs.cfg.Tiles != "" {
		v.Tiles = tilesOf(cs.cfg.Tiles, int(zoom), offX, offY)
		v.Attribution = cs.cfg.TileAttribution
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
				v.Sites = append(v.Sites, mapSite{Name: st.Label, X: st.SiteX, Y: st.SiteY, R: round1(math.Max(radiusPx, 3))})
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

// tilesOf lists the tiles of zoom z that cover the view, placed by the
// view's offset of the zoom-z world; tmpl holds {z}, {x} and {y}.
func tilesOf(tmpl string, z int, offX, offY float64) []mapTile {
	n := 1 << z
	var out []mapTile
	for ty := int(math.Floor(-offY / tileSize)); float64(ty*tileSize)+offY < mapH; ty++ {
		if ty < 0 || ty >= n {
			continue
		}
		for tx := int(math.Floor(-offX / tileSize)); float64(tx*tileSize)+offX < mapW; tx++ {
			if tx < 0 || tx >= n {
				continue
			}
			url := strings.NewReplacer("{z}", strconv.Itoa(z), "{x}", strconv.Itoa(tx), "{y}", strconv.Itoa(ty)).Replace(tmpl)
			out = append(out, mapTile{URL: url, X: round1(float64(tx*tileSize) + offX), Y: round1(float64(ty*tileSize) + offY), Size: tileSize})
		}
	}
	return out
}
