package demo

// The demo organisation's reference data: people, teams, the catalogue,
// price lists and customers. Everything here is derived from the seed alone
// (never from the store), so a second run computes the same documents.

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/workflow"
)

// Password is every demo user's password. It is printed on purpose:
// the demo organisation is for trying fieldsync, never for real data.
const Password = "fieldsync-demo"

// demoTimeZone is the demo organisation's time zone (its KPIs' days).
const demoTimeZone = "Europe/Berlin"

// demoCompany is the demo organisation's display name.
const demoCompany = "Rheinwerk Antriebstechnik GmbH"

// User is one person of the demo organisation.
type User struct {
	ID, Name, Email string
	Roles           []string
	Teams, Leads    []string
	// Skew is how far the user's phone clock is off (device - true time).
	Skew time.Duration
}

// Team is a sales team around one city.
type Team struct {
	ID, Name string
	City     demoCity
}

// demoCity is the area a team covers: towns with industrial estates.
type demoCity struct {
	Phone string // dialling prefix
	Towns []demoTown
}

type demoTown struct {
	Name, Postcode string
	Lat, Lng       float64
}

var demoCities = map[string]demoCity{
	"stuttgart": {Phone: "+49 711", Towns: []demoTown{
		{"Stuttgart-Feuerbach", "70469", 48.8133, 9.1583}, {"Stuttgart-Zuffenhausen", "70435", 48.8306, 9.1714},
		{"Stuttgart-Wangen", "70327", 48.7744, 9.2394}, {"Esslingen am Neckar", "73728", 48.7406, 9.3108},
		{"Ludwigsburg", "71634", 48.8975, 9.1917}, {"Böblingen", "71032", 48.6856, 9.0153},
		{"Sindelfingen", "71063", 48.7133, 9.0028}, {"Waiblingen", "71332", 48.8303, 9.3169},
		{"Fellbach", "70734", 48.8086, 9.2758}, {"Leonberg", "71229", 48.8006, 9.0136},
		{"Kornwestheim", "70806", 48.8614, 9.1850}, {"Filderstadt", "70794", 48.6667, 9.2167},
	}},
	"munich": {Phone: "+49 89", Towns: []demoTown{
		{"München-Moosach", "80992", 48.1800, 11.5100}, {"München-Neuperlach", "81735", 48.1000, 11.6500},
		{"München-Freimann", "80939", 48.1900, 11.6100}, {"München-Obersendling", "81379", 48.0980, 11.5350},
		{"Garching bei München", "85748", 48.2490, 11.6510}, {"Unterschleißheim", "85716", 48.2800, 11.5770},
		{"Dachau", "85221", 48.2600, 11.4340}, {"Germering", "82110", 48.1330, 11.3670},
		{"Ottobrunn", "85521", 48.0650, 11.6650}, {"Unterföhring", "85774", 48.1920, 11.6450},
		{"Taufkirchen", "82024", 48.0480, 11.6170}, {"Puchheim", "82178", 48.1720, 11.3540},
	}},
}

// People returns the organisation's users: one admin, two managers
// leading a team each, eight reps, and one user per back-office role of the
// default responsibility matrix. Emails are <id>@<org>.example.
func People(org string) ([]Team, []User) {
	teams := []Team{
		{ID: "stuttgart", Name: "Team Stuttgart", City: demoCities["stuttgart"]},
		{ID: "munich", Name: "Team München", City: demoCities["munich"]},
	}
	domain := demoDomain(org)
	u := func(id, name string, roles []string, teams, leads []string, skew time.Duration) User {
		return User{ID: id, Name: name, Email: id + "@" + domain, Roles: roles, Teams: teams, Leads: leads, Skew: skew}
	}
	rep := []string{fieldsales.RoleRep}
	users := []User{
		u("admin", "Ada Albrecht", []string{fieldsales.RoleAdmin}, nil, nil, 0),
		u("manager-1", "Martina Keller", []string{fieldsales.RoleManager}, nil, []string{"stuttgart"}, 0),
		u("manager-2", "Thomas Huber", []string{fieldsales.RoleManager}, nil, []string{"munich"}, 0),
		// Most phones keep network time; rep-3's runs 7 minutes fast and
		// rep-6's 3 minutes slow, which the server corrects.
		u("rep-1", "Jonas Weber", rep, []string{"stuttgart"}, nil, 2*time.Second),
		u("rep-2", "Lea Fischer", rep, []string{"stuttgart"}, nil, 0),
		u("rep-3", "Murat Yılmaz", rep, []string{"stuttgart"}, nil, 7*time.Minute),
		u("rep-4", "Sofia Schmid", rep, []string{"stuttgart"}, nil, -4*time.Second),
		u("rep-5", "Lukas Bauer", rep, []string{"munich"}, nil, 0),
		u("rep-6", "Anna Maier", rep, []string{"munich"}, nil, -3*time.Minute),
		u("rep-7", "Felix Wagner", rep, []string{"munich"}, nil, 1*time.Second),
		u("rep-8", "Nina Hofmann", rep, []string{"munich"}, nil, 0),
	}
	names := map[string]string{
		"order_desk": "Olga Petrović", "credit_control": "Carsten Vogel", "demand_planning": "Diana Roth",
		"stores": "Stefan Brandl", "factory_planning": "Frieda Lang", "logistics": "Leon Krause", "billing": "Birgit Sommer",
	}
	for _, role := range identity.DefaultBackOfficeRoles {
		users = append(users, u(strings.ReplaceAll(role, "_", "-"), names[role], []string{role}, nil, nil, 0))
	}
	// The roles the default matrix adds (the accountable managers): an
	// escalation must reach someone.
	leads := map[string]string{
		"sales_head": "Sabine Hartmann", "finance": "Franz Neumann", "finance_manager": "Petra Zimmermann",
		"supply_chain_manager": "Jan Schröder", "plant_manager": "Paul Richter", "warehouse_manager": "Walter Koch",
		"logistics_manager": "Lena Wolf", "sales_ops_manager": "Sven Becker", "order_desk_lead": "Olaf Schulz",
		"qa": "Quirin Maurer",
	}
	for _, role := range defaultMatrix().Roles {
		users = append(users, u(strings.ReplaceAll(role, "_", "-"), leads[role], []string{role}, nil, nil, 0))
	}
	return teams, users
}

// defaultMatrix is the responsibility matrix a new organisation starts
// with; it is embedded and valid, so a failure here is a build defect.
func defaultMatrix() workflow.Matrix {
	var m workflow.Matrix
	if err := json.Unmarshal(workflow.DefaultMatrix(), &m); err != nil {
		panic(err)
	}
	return m
}

// demoDomain is the demo users' email domain for org.
func demoDomain(org string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(org) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-") + ".example"
}

// demoProduct is one catalogue item.
type demoProduct struct {
	ID, Name, Category, Unit string
	Price                    float64
	Active                   bool
}

// demoProducts returns the catalogue: about 200 motors, switchgear items,
// cables and pumps at list prices in EUR. Three IE2 motors are
// discontinued (EU rules ended them), so an order for one is rejected.
func demoProducts() []demoProduct {
	var ps []demoProduct
	add := func(id, name, cat, unit string, price float64, active bool) {
		ps = append(ps, demoProduct{ID: id, Name: name, Category: cat, Unit: unit, Price: math.Round(price*100) / 100, Active: active})
	}
	kw := []float64{0.37, 0.55, 0.75, 1.1, 1.5, 2.2, 3, 4, 5.5, 7.5, 11, 15, 18.5, 22, 30, 37, 45, 55, 75, 90}
	motor := func(k float64) float64 { return 140 + 88*math.Pow(k, 0.92) }
	for _, poles := range []int{2, 4} {
		for _, k := range kw {
			add(fmt.Sprintf("MOT-IE3-%dP-%g", poles, k), fmt.Sprintf("Three-phase motor IE3 %g kW %d-pole, B3", k, poles),
				"motors", "pc", motor(k)*(1+0.04*float64(poles-2)), true)
		}
	}
	for _, k := range []float64{5.5, 7.5, 11, 15, 22, 30, 45, 55} {
		add(fmt.Sprintf("MOT-IE4-4P-%g", k), fmt.Sprintf("Three-phase motor IE4 %g kW 4-pole, B3", k), "motors", "pc", motor(k)*1.28, true)
	}
	for i, k := range []float64{0.25, 0.37, 0.55, 0.75, 1.1, 1.5, 2.2, 3, 4, 5.5} {
		add(fmt.Sprintf("GM-HB-%g", k), fmt.Sprintf("Helical geared motor %g kW, i=%d", k, []int{20, 25, 16, 12, 10, 8, 14, 9, 7, 6}[i]),
			"motors", "pc", 310+210*math.Pow(k, 0.85), true)
	}
	for _, k := range []float64{4, 7.5, 11} {
		add(fmt.Sprintf("MOT-IE2-4P-%g", k), fmt.Sprintf("Three-phase motor IE2 %g kW 4-pole (discontinued)", k), "motors", "pc", motor(k)*0.9, false)
	}

	for _, curve := range []string{"B", "C"} {
		for _, a := range []int{6, 10, 13, 16, 20, 25, 32, 40, 50, 63} {
			add(fmt.Sprintf("MCB-%s%d-3P", curve, a), fmt.Sprintf("Miniature circuit breaker 3-pole %s%d", curve, a),
				"switchgear", "pc", 21+0.9*float64(a), true)
		}
	}
	for _, a := range []int{100, 160, 250, 400, 630} {
		add(fmt.Sprintf("MCCB-%d", a), fmt.Sprintf("Moulded-case circuit breaker %d A, 3-pole", a), "switchgear", "pc", 180+1.6*float64(a), true)
	}
	for _, a := range []int{9, 12, 18, 25, 32, 40, 50, 65, 80, 95} {
		add(fmt.Sprintf("CT-%dA", a), fmt.Sprintf("Contactor %d A AC-3, 230 V coil", a), "switchgear", "pc", 28+2.3*float64(a), true)
	}
	for _, r := range []string{"0.4-0.63", "0.63-1", "1-1.6", "1.6-2.5", "2.5-4", "4-6.3", "6-10", "9-14", "13-18", "17-23", "20-25", "24-32"} {
		add("MPCB-"+r, "Motor protection circuit breaker "+r+" A", "switchgear", "pc", 64+3.1*float64(len(r)), true)
	}
	for _, a := range []int{25, 40, 63, 80, 100, 125} {
		add(fmt.Sprintf("SD-%dA", a), fmt.Sprintf("Switch disconnector %d A, 3-pole", a), "switchgear", "pc", 35+1.1*float64(a), true)
	}
	for _, a := range []int{25, 40, 63} {
		add(fmt.Sprintf("RCCB-%dA-30", a), fmt.Sprintf("Residual current circuit breaker %d A 30 mA, 4-pole", a), "switchgear", "pc", 48+1.2*float64(a), true)
	}

	for _, s := range []string{"3x1.5", "3x2.5", "4x1.5", "4x2.5", "5x1.5", "5x2.5", "5x4", "5x6", "5x10", "5x16", "4x25", "4x35", "4x50", "4x95"} {
		add("NYY-J-"+s, "Power cable NYY-J "+s+" mm², 0.6/1 kV", "cables", "m", cablePrice(s, 1.0), true)
	}
	for _, s := range []string{"3x1.5", "3x2.5", "5x1.5", "5x2.5", "5x4", "5x6", "5x10"} {
		add("NYM-J-"+s, "Installation cable NYM-J "+s+" mm²", "cables", "m", cablePrice(s, 0.8), true)
	}
	for _, s := range []string{"3G1.5", "3G2.5", "4G2.5", "5G1.5", "5G2.5", "5G4", "5G6", "5G10"} {
		add("H07RN-F-"+s, "Rubber flexible cable H07RN-F "+s+" mm²", "cables", "m", cablePrice(s, 1.4), true)
	}
	for _, s := range []string{"3G0.75", "3G1", "3G1.5", "4G1.5", "5G1", "5G1.5", "7G1", "7G1.5"} {
		add("CTRL-110-"+s, "Control cable PVC 110 "+s+" mm²", "cables", "m", cablePrice(s, 1.6), true)
	}
	for _, s := range []string{"4x16/16", "4x25/16", "4x35/16", "4x50/25", "4x70/35", "4x95/50", "4x150/70"} {
		add("NYCWY-"+strings.ReplaceAll(s, "/", "-"), "Power cable NYCWY "+s+" mm² with concentric conductor", "cables", "m",
			cablePrice(strings.Split(s, "/")[0], 1.3), true)
	}
	for _, s := range []string{"2x0.5", "3x0.5", "4x0.5", "7x0.5", "12x0.5"} {
		add("LIYCY-"+s, "Screened data cable LiYCY "+s+" mm²", "cables", "m", cablePrice(s, 2.2), true)
	}
	add("CAT7-S-FTP", "Data cable Cat. 7 S/FTP 4x2xAWG23", "cables", "m", 1.35, true)

	for _, sz := range []string{"32-125", "32-160", "32-200", "40-125", "40-160", "40-200", "50-125", "50-160", "50-200", "65-160", "65-200", "80-200"} {
		var a, b int
		fmt.Sscanf(sz, "%d-%d", &a, &b)
		add("NP-"+sz, "Standardised end-suction pump "+sz+", cast iron", "pumps", "pc", 900+9*float64(a)+6*float64(b), true)
	}
	for i, k := range []float64{0.55, 0.75, 1.1, 1.5, 2.2, 3, 4, 5.5} {
		add(fmt.Sprintf("SUB-%g", k), fmt.Sprintf("Submersible drainage pump %g kW, %d m³/h", k, []int{12, 16, 22, 30, 42, 55, 70, 90}[i]),
			"pumps", "pc", 420+520*k, true)
	}
	for _, n := range []int{2, 3} {
		for _, q := range []int{6, 10, 16} {
			add(fmt.Sprintf("BOOST-%dx%d", n, q), fmt.Sprintf("Pressure booster set, %d pumps, %d m³/h", n, q), "pumps", "pc",
				2600+900*float64(n)+85*float64(q), true)
		}
	}
	for _, s := range []string{"25-40", "25-60", "32-60", "32-80", "40-100", "50-120"} {
		add("CIRC-"+s, "High-efficiency circulation pump "+s, "pumps", "pc", 240+4.2*float64(len(s))*float64(s[0]-'0'), true)
	}
	for _, l := range []int{2, 6, 12, 25} {
		add(fmt.Sprintf("DOS-%dL", l), fmt.Sprintf("Diaphragm dosing pump %d l/h", l), "pumps", "pc", 520+18*float64(l), true)
	}
	for _, s := range []string{"25", "30", "35", "45", "55", "65"} {
		add("SEAL-KIT-"+s, "Mechanical seal kit "+s+" mm for end-suction pumps", "pumps", "pc", 95+3*float64(len(s))*float64(s[0]-'0'), true)
	}
	return ps
}

// eur writes a demo price, already rounded to the cent, as the protocol's
// decimal string.
func eur(price float64) string { return strconv.FormatFloat(price, 'f', 2, 64) }

// cablePrice is a plausible price per metre from the cross-section.
func cablePrice(s string, factor float64) float64 {
	var cores int
	var mm float64
	s = strings.ReplaceAll(s, "G", "x")
	fmt.Sscanf(s, "%dx%g", &cores, &mm)
	return (0.35 + 0.21*float64(cores)*mm) * factor
}

// demoPriceList is one price list; Prices are per product id.
type demoPriceList struct {
	ID, Name, Segment string
	Prices            map[string]float64
}

// demoPriceLists: the standard list at list prices, OEM prices (engines
// and pumps cheaper) and trade prices (switchgear and cables cheaper).
func demoPriceLists(ps []demoProduct) []demoPriceList {
	lists := []demoPriceList{
		{ID: "pl-standard", Name: "Standard prices", Prices: map[string]float64{}},
		{ID: "pl-oem", Name: "OEM prices", Segment: "OEM", Prices: map[string]float64{}},
		{ID: "pl-trade", Name: "Panel builders and trade", Segment: "panel builder", Prices: map[string]float64{}},
	}
	off := map[string]map[string]float64{
		"pl-standard": {},
		"pl-oem":      {"motors": 0.12, "pumps": 0.12, "switchgear": 0.08, "cables": 0.05},
		"pl-trade":    {"switchgear": 0.15, "cables": 0.15, "motors": 0.06, "pumps": 0.06},
	}
	for _, pl := range lists {
		for _, p := range ps {
			if p.Active {
				pl.Prices[p.ID] = math.Round(p.Price*(1-off[pl.ID][p.Category])*100) / 100
			}
		}
	}
	return lists
}

// demoCustomer is one account with its site and its reps.
type demoCustomer struct {
	ID, Name, Code, Segment, PriceList, Credit string
	Team                                       string
	Town                                       demoTown
	Street                                     string
	Lat, Lng                                   float64
	Reps                                       []string
	Contacts                                   []map[string]any
	Categories                                 []string // what it buys
}

var (
	demoFamilies = []string{"Brenner", "Kessler", "Haller", "Vogt", "Ziegler", "Lorenz", "Seifert", "Krämer", "Roth", "Engel",
		"Graf", "Busch", "Lang", "Frank", "Berger", "Winter", "Ludwig", "Sommer", "Baumann", "Kaiser", "Fuchs", "Scholz",
		"Möller", "Hartmann", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofer", "Pichler", "Wimmer", "Eder",
		"Gruber", "Moser", "Stadler", "Reiter", "Brandl", "Kolb", "Nagel", "Pfeiffer", "Ritter", "Schuster", "Walz", "Wolf"}
	demoKinds = []struct{ suffix, segment string }{
		{"Maschinenbau GmbH", "OEM"}, {"Anlagenbau GmbH", "OEM"}, {"Fördertechnik AG", "OEM"},
		{"Sondermaschinen GmbH", "OEM"}, {"Elektrotechnik GmbH", "contractor"}, {"Elektro-Installationen KG", "contractor"},
		{"Gebäudetechnik GmbH", "contractor"}, {"Schaltanlagenbau GmbH", "panel builder"},
		{"Steuerungstechnik GmbH", "panel builder"}, {"Automation GmbH", "panel builder"},
		{"Pumpen & Wassertechnik GmbH", "distributor"}, {"Elektrogroßhandel GmbH", "distributor"},
		{"Kunststofftechnik GmbH", "plant operator"}, {"Lebensmittelwerke GmbH", "plant operator"},
		{"Papierfabrik KG", "plant operator"},
	}
	demoStreets = []string{"Industriestraße", "Gewerbestraße", "Robert-Bosch-Straße", "Daimlerstraße", "Siemensstraße",
		"Max-Planck-Straße", "Carl-Benz-Straße", "Im Gewerbepark", "Otto-Hahn-Straße", "Werkstraße", "Rudolf-Diesel-Straße",
		"Einsteinstraße", "Benzstraße", "Zeppelinstraße", "Dieselstraße"}
	demoFirstNames = []string{"Andreas", "Birgit", "Christian", "Daniela", "Erik", "Franziska", "Georg", "Heike", "Jan",
		"Katrin", "Markus", "Nicole", "Oliver", "Petra", "Ralf", "Sabine", "Tobias", "Ulrike", "Volker", "Yvonne"}
	demoJobs  = []string{"Purchasing", "Maintenance lead", "Plant engineer", "Managing director", "Project manager", "Technical buyer"}
	demoBuyer = map[string][]string{
		"OEM": {"motors", "switchgear", "motors"}, "contractor": {"cables", "switchgear"},
		"panel builder": {"switchgear", "cables", "switchgear"}, "distributor": {"cables", "switchgear", "motors", "pumps"},
		"plant operator": {"pumps", "motors", "cables"}, "utility": {"pumps", "motors", "cables", "pumps"},
	}
)

// demoCustomersFor generates n customers per team around its city. Each
// rep covers three towns of the team; a few key accounts are shared by two
// reps of the team; about one in twelve is on credit hold or blocked.
func demoCustomersFor(rng *rand.Rand, teams []Team, users []User, perTeam int) []demoCustomer {
	var out []demoCustomer
	used := map[string]bool{}
	for ti, t := range teams {
		var reps []string
		for _, u := range users {
			if slices.Contains(u.Teams, t.ID) {
				reps = append(reps, u.ID)
			}
		}
		for i := range perTeam {
			town := t.City.Towns[rng.IntN(len(t.City.Towns))]
			rep := reps[slices.Index(t.City.Towns, town)*len(reps)/len(t.City.Towns)]
			var name, segment string
			for {
				if rng.IntN(25) == 0 {
					kind := []string{"Stadtwerke", "Klärwerk", "Wasserverband"}[rng.IntN(3)]
					name, segment = kind+" "+strings.Split(town.Name, "-")[0], "utility"
				} else {
					k := demoKinds[rng.IntN(len(demoKinds))]
					name, segment = demoFamilies[rng.IntN(len(demoFamilies))]+" "+k.suffix, k.segment
				}
				if !used[name] {
					break
				}
				if rng.IntN(3) == 0 { // a second site of a known name
					name += " (Werk " + strings.Split(town.Name, " ")[0] + ")"
					if !used[name] {
						break
					}
				}
			}
			used[name] = true
			// Sites spread over the town's industrial estates, within ~3 km.
			dist, bearing := 3000*math.Sqrt(rng.Float64()), rng.Float64()*2*math.Pi
			lat, lng := offsetLatLng(town.Lat, town.Lng, dist, bearing)
			c := demoCustomer{
				ID: fmt.Sprintf("cust-%04d", len(out)+1), Name: name, Code: fmt.Sprintf("1%d%04d", ti+1, i+1), Segment: segment,
				Team: t.ID, Town: town, Street: fmt.Sprintf("%s %d", demoStreets[rng.IntN(len(demoStreets))], 1+rng.IntN(120)),
				Lat: round6(lat), Lng: round6(lng), Reps: []string{rep}, Credit: "ok", Categories: demoBuyer[segment],
			}
			switch segment {
			case "OEM":
				c.PriceList = "pl-oem"
			case "panel builder", "distributor":
				c.PriceList = "pl-trade"
			default:
				c.PriceList = "pl-standard"
			}
			switch r := rng.IntN(100); {
			case r < 6:
				c.Credit = "hold"
			case r < 8:
				c.Credit = "blocked"
			}
			if rng.IntN(20) == 0 { // a key account two reps look after
				other := reps[rng.IntN(len(reps))]
				if other != rep {
					c.Reps = append(c.Reps, other)
				}
			}
			slug := demoSlug(strings.Fields(name)[0])
			for range 1 + rng.IntN(2) {
				first, last := demoFirstNames[rng.IntN(len(demoFirstNames))], demoFamilies[rng.IntN(len(demoFamilies))]
				c.Contacts = append(c.Contacts, map[string]any{
					"name": first + " " + last, "role": demoJobs[rng.IntN(len(demoJobs))],
					"phone": fmt.Sprintf("%s %d-%d", t.City.Phone, 1000000+rng.IntN(8999999), 10+rng.IntN(89)),
					"email": demoSlug(first) + "." + demoSlug(last) + "@" + slug + ".example",
				})
			}
			out = append(out, c)
		}
	}
	return out
}

// doc is the customer document as an admin would import it.
func (c demoCustomer) doc() map[string]any {
	return map[string]any{
		"name": c.Name, "code": c.Code, "segment": c.Segment, "contacts": c.Contacts,
		"address":  map[string]any{"line1": c.Street, "city": c.Town.Name, "postcode": c.Town.Postcode, "country": "DE"},
		"location": map[string]any{"lat": c.Lat, "lng": c.Lng}, "assigned_reps": c.Reps, "credit_status": c.Credit,
		"price_list_id": c.PriceList,
	}
}

// demoSlug makes an ASCII email part of a German name.
func demoSlug(s string) string {
	r := strings.NewReplacer("ä", "ae", "ö", "oe", "ü", "ue", "ß", "ss", "Ä", "ae", "Ö", "oe", "Ü", "ue", "ı", "i", "ć", "c")
	s = strings.ToLower(r.Replace(s))
	var b strings.Builder
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// offsetLatLng moves a position by dist metres towards bearing (radians).
func offsetLatLng(lat, lng, dist, bearing float64) (float64, float64) {
	const earth = 6371000.0
	dLat := dist * math.Cos(bearing) / earth
	dLng := dist * math.Sin(bearing) / (earth * math.Cos(lat*math.Pi/180))
	return lat + dLat*180/math.Pi, lng + dLng*180/math.Pi
}

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }
