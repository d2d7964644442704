package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/jwtauth"
)

// The admin commands are clients of a running server's admin API: the store
// is the server's (SQLite is locked while it runs), so they never open it.

const adminUsage = `usage:
  fieldsync org show|set       [--name N] [--time-zone TZ] [--roles a,b]
  fieldsync user add           --email E --role r[,r] [--name N] [--id ID] [--team t,..] [--leads t,..]
                               [--password-stdin | --no-password]
  fieldsync user list          [--team T] [--leads T] [--role R]
  fieldsync user update ID     [--email E] [--name N] [--role r,..] [--team t,..] [--leads t,..]
                               [--password-stdin | --password-prompt]
  fieldsync user disable|enable|sessions ID
  fieldsync team add ID --name N | team list | team rename ID --name N
  fieldsync device revoke --user ID --device DEVICE
  fieldsync service-account add --name N --role r[,r] | service-account list
  fieldsync service-account rotate ID [--overlap 24h] | service-account revoke ID

Every command talks to --server (default http://127.0.0.1:8080) and
authenticates with --token (or FIELDSYNC_TOKEN), or with --data DIR --org ORG:
a 5-minute admin token signed with the server's key in DIR/keys (this is how
the first admin is created). --json prints JSON for scripts instead of a table.
Exit status: 0 done, 1 refused (the server's code and message on stderr), 2 usage.
`

// adminCLI runs "fieldsync org|user|team|device ...".
func adminCLI(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) < 2 || args[1] == "-h" || args[1] == "--help" {
		fmt.Fprint(stderr, adminUsage)
		if len(args) >= 2 {
			return flag.ErrHelp
		}
		return usageError(args[0] + " needs a subcommand")
	}
	noun, verb := args[0], args[1]
	fs := flag.NewFlagSet(noun+" "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage of fieldsync %s %s: %s\n", noun, verb, adminSummaries[noun+" "+verb])
		fs.PrintDefaults()
	}
	c := &apiClient{stdout: stdout}
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8080", "the fieldsync server (env FIELDSYNC_SERVER)")
	fs.StringVar(&c.token, "token", "", "an admin access token (default: env FIELDSYNC_TOKEN)")
	fs.StringVar(&c.data, "data", "", "mint a 5-minute admin token with the signing key in this data directory")
	fs.StringVar(&c.org, "org", "", "the organisation of the token --data mints")
	fs.BoolVar(&c.json, "json", false, "print the server's JSON reply")

	cmd, ok := adminCommands[noun+" "+verb]
	if !ok {
		fmt.Fprint(stderr, adminUsage)
		return usageError(fmt.Sprintf("unknown command %q", noun+" "+verb))
	}
	run := cmd(fs)
	// Flags may come before or after the one positional argument (an id).
	pos, err := parseInterleaved(fs, args[2:])
	if err != nil {
		return err
	}
	if err := c.authenticate(); err != nil {
		return err
	}
	return run(ctx, c, pos, stdin, stderr)
}

// adminCommand declares its flags on fs and returns what runs once they
// are parsed.
type adminCommand func(fs *flag.FlagSet) func(ctx context.Context, c *apiClient, pos []string, stdin io.Reader, stderr io.Writer) error

var adminCommands = map[string]adminCommand{
	"org show":      orgShow,
	"org set":       orgSet,
	"user add":      userAdd,
	"user list":     userList,
	"user update":   userUpdate,
	"user disable":  userState(true),
	"user enable":   userState(false),
	"user sessions": userSessions,
	"team add":      teamAdd,
	"team list":     teamList,
	"team rename":   teamRename,
	"device revoke": deviceRevoke,
}

// adminSummaries say what each admin command does, for its -h (a test
// keeps one for every command).
var adminSummaries = map[string]string{
	"org show":               "print the organisation: name, time zone, back-office roles",
	"org set":                "change the organisation's name, time zone or back-office roles",
	"user add":               "add a user with their roles and teams, and optionally a password",
	"user list":              "list the organisation's users, filtered by team, led team or role",
	"user update":            "change a user's email, name, roles, teams or password",
	"user disable":           "disable a user: every token and session of theirs stops working",
	"user enable":            "enable a disabled user again",
	"user sessions":          "list a user's signed-in devices",
	"team add":               "add a team",
	"team list":              "list the teams",
	"team rename":            "rename a team",
	"device revoke":          "sign a user's device out: its refresh token and session end",
	"service-account add":    "add an integration's service account and print its key once",
	"service-account list":   "list the service accounts",
	"service-account rotate": "issue a new key; the old one works for --overlap more",
	"service-account revoke": "revoke a service account's keys",
}

// one checks that exactly one positional argument (an id) was given.
func one(pos []string, what string) (string, error) {
	if len(pos) != 1 || pos[0] == "" {
		return "", usageError(fmt.Sprintf("give exactly one %s", what))
	}
	return pos[0], nil
}

func none(pos []string) error {
	if len(pos) > 0 {
		return usageError(fmt.Sprintf("unexpected arguments %q", pos))
	}
	return nil
}

// list splits a comma-separated flag value.
func list(s string) []string {
	out := []string{}
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// setFlags reports which flags the command line set, so that an update
// changes only those.
func setFlags(fs *flag.FlagSet) map[string]bool {
	m := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { m[f.Name] = true })
	return m
}

func orgShow(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
	return func(ctx context.Context, c *apiClient, pos []string, _ io.Reader, _ io.Writer) error {
		if err := none(pos); err != nil {
			return err
		}
		o, err := c.Org(ctx)
		if err != nil {
			return err
		}
		return c.print(o, func(w io.Writer) { orgTable(w, o) })
	}
}

func orgSet(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
	name := fs.String("name", "", "display name")
	tz := fs.String("time-zone", "", "IANA time zone the organisation's figures are computed in, like Europe/Berlin")
	roles := fs.String("roles", "", "back-office roles added to the defaults, comma-separated (replaces the list)")
	return func(ctx context.Context, c *apiClient, pos []string, _ io.Reader, _ io.Writer) error {
		if err := none(pos); err != nil {
			return err
		}
		set := setFlags(fs)
		var ch client.OrgChange
		if set["name"] {
			ch.Name = name
		}
		if set["time-zone"] {
			ch.TimeZone = tz
		}
		if set["roles"] {
			rs := list(*roles)
			ch.Roles = &rs
		}
		if ch == (client.OrgChange{}) {
			return usageError("org set needs --name, --time-zone or --roles")
		}
		o, err := c.SetOrg(ctx, ch)
		if err != nil {
			return err
		}
		return c.print(o, func(w io.Writer) { orgTable(w, o) })
	}
}

func userAdd(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
	id := fs.String("id", "", "user id (default: a new ULID)")
	email := fs.String("email", "", "email address, used to sign in (required)")
	name := fs.String("name", "", "display name")
	roles := fs.String("role", "", "roles, comma-separated: rep, manager, admin or a back-office role (required)")
	teams := fs.String("team", "", "teams the user belongs to, comma-separated")
	leads := fs.String("leads", "", "teams the user leads, comma-separated")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	noPassword := fs.Bool("no-password", false, "create the user without a password (it cannot sign in until one is set)")
	return func(ctx context.Context, c *apiClient, pos []string, stdin io.Reader, stderr io.Writer) error {
		if err := none(pos); err != nil {
			return err
		}
		if *email == "" || *roles == "" {
			return usageError("user add needs --email and --role")
		}
		body := client.NewUser{ID: *id, Email: *email, Name: *name, Roles: list(*roles), Teams: list(*teams), Leads: list(*leads)}
		switch {
		case *fromStdin && *noPassword:
			return usageError("--password-stdin and --no-password exclude each other")
		case *fromStdin:
			pw, err := readPasswordLine(stdin)
			if err != nil {
				return err
			}
			body.Password = pw
		case !*noPassword && isTerminal(stdin):
			pw, err := promptPassword(stdin, stderr, "Password for "+*email)
			if err != nil {
				return err
			}
			body.Password = pw
		default:
			fmt.Fprintln(stderr, "note: no password set; the user cannot sign in until one is (user update ID --password-stdin)")
		}
		u, err := c.AddUser(ctx, body)
		if err != nil {
			return err
		}
		return c.print(u, func(w io.Writer) { usersTable(w, []client.User{u}) })
	}
}

func userList(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
	team := fs.String("team", "", "only members of this team")
	leads := fs.String("leads", "", "only managers of this team")
	role := fs.String("role", "", "only users holding this role")
	return func(ctx context.Context, c *apiClient, pos []string, _ io.Reader, _ io.Writer) error {
		if err := none(pos); err != nil {
			return err
		}
		us, err := c.Users(ctx, client.UserFilter{Team: *team, Leads: *leads, Role: *role})
		if err != nil {
			return err
		}
		all := struct {
			Users []client.User `json:"users"`
		}{Users: us}
		return c.print(all, func(w io.Writer) { usersTable(w, all.Users) })
	}
}

func userUpdate(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
	email := fs.String("email", "", "new email address")
	name := fs.String("name", "", "new display name")
	roles := fs.String("role", "", "new roles, comma-separated (replaces them)")
	teams := fs.String("team", "", "new teams, comma-separated (replaces them; \"\" for none)")
	leads := fs.String("leads", "", "new led teams, comma-separated (replaces them; \"\" for none)")
	fromStdin := fs.Bool("password-stdin", false, "set the password read from the first line of standard input")
	prompt := fs.Bool("password-prompt", false, "set a password typed at a prompt")
	return func(ctx context.Context, c *apiClient, pos []string, stdin io.Reader, stderr io.Writer) error {
		id, err := one(pos, "user id")
		if err != nil {
			return err
		}
		set := setFlags(fs)
		var ch client.UserChange
		listOf := func(s string) *[]string { l := list(s); return &l }
		if set["email"] {
			ch.Email = email
		}
		if set["name"] {
			ch.Name = name
		}
		if set["role"] {
			ch.Roles = listOf(*roles)
		}
		if set["team"] {
			ch.Teams = listOf(*teams)
		}
		if set["leads"] {
			ch.Leads = listOf(*leads)
		}
		var pw string
		switch {
		case *fromStdin && *prompt:
			return usageError("--password-stdin and --password-prompt exclude each other")
		case *fromStdin:
			if pw, err = readPasswordLine(stdin); err != nil {
				return err
			}
			ch.Password = &pw
		case *prompt:
			if pw, err = promptPassword(stdin, stderr, "New password for "+id); err != nil {
				return err
			}
			ch.Password = &pw
		}
		if ch == (client.UserChange{}) {
			return usageError("user update needs something to change")
		}
		u, err := c.UpdateUser(ctx, id, ch)
		if err != nil {
			return err
		}
		return c.print(u, func(w io.Writer) { usersTable(w, []client.User{u}) })
	}
}

func userState(disable bool) adminCommand {
	return func(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
		return func(ctx context.Context, c *apiClient, pos []string, _ io.Reader, _ io.Writer) error {
			id, err := one(pos, "user id")
			if err != nil {
				return err
			}
			u, err := c.SetUserDisabled(ctx, id, disable)
			if err != nil {
				return err
			}
			return c.print(u, func(w io.Writer) { usersTable(w, []client.User{u}) })
		}
	}
}

func userSessions(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
	return func(ctx context.Context, c *apiClient, pos []string, _ io.Reader, _ io.Writer) error {
		id, err := one(pos, "user id")
		if err != nil {
			return err
		}
		ss, err := c.Sessions(ctx, id)
		if err != nil {
			return err
		}
		out := struct {
			Sessions []client.Session `json:"sessions"`
		}{Sessions: ss}
		return c.print(out, func(w io.Writer) {
			fmt.Fprintln(w, "SESSION\tDEVICE\tSIGNED IN\tSTATE")
			for _, s := range out.Sessions {
				state := "live until " + s.ExpiresAt.Format(time.RFC3339)
				if s.RevokedAt != nil {
					state = "ended " + s.RevokedAt.Format(time.RFC3339) + " (" + s.RevokeCause + ")"
				} else if !s.Live {
					state = "expired"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.ID, s.Device, s.Created.Format(time.RFC3339), state)
			}
		})
	}
}

func teamAdd(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
	name := fs.String("name", "", "display name (required)")
	return func(ctx context.Context, c *apiClient, pos []string, _ io.Reader, _ io.Writer) error {
		id, err := one(pos, "team id")
		if err != nil {
			return err
		}
		if *name == "" {
			return usageError("team add needs --name")
		}
		t, err := c.AddTeam(ctx, id, *name)
		if err != nil {
			return err
		}
		return c.print(t, func(w io.Writer) { teamsTable(w, []client.Team{t}) })
	}
}

func teamList(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
	return func(ctx context.Context, c *apiClient, pos []string, _ io.Reader, _ io.Writer) error {
		if err := none(pos); err != nil {
			return err
		}
		ts, err := c.Teams(ctx)
		if err != nil {
			return err
		}
		out := struct {
			Teams []client.Team `json:"teams"`
		}{Teams: ts}
		return c.print(out, func(w io.Writer) { teamsTable(w, out.Teams) })
	}
}

func teamRename(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
	name := fs.String("name", "", "new display name (required)")
	return func(ctx context.Context, c *apiClient, pos []string, _ io.Reader, _ io.Writer) error {
		id, err := one(pos, "team id")
		if err != nil {
			return err
		}
		if *name == "" {
			return usageError("team rename needs --name")
		}
		t, err := c.RenameTeam(ctx, id, *name)
		if err != nil {
			return err
		}
		return c.print(t, func(w io.Writer) { teamsTable(w, []client.Team{t}) })
	}
}

func deviceRevoke(fs *flag.FlagSet) func(context.Context, *apiClient, []string, io.Reader, io.Writer) error {
	user := fs.String("user", "", "user id (required)")
	device := fs.String("device", "", "device id (required)")
	return func(ctx context.Context, c *apiClient, pos []string, _ io.Reader, _ io.Writer) error {
		if err := none(pos); err != nil {
			return err
		}
		if *user == "" || *device == "" {
			return usageError("device revoke needs --user and --device")
		}
		n, err := c.RevokeDevice(ctx, *user, *device)
		if err != nil {
			return err
		}
		out := struct {
			Revoked int `json:"revoked"`
		}{n}
		return c.print(out, func(w io.Writer) { fmt.Fprintf(w, "revoked %d session(s)\n", out.Revoked) })
	}
}

// orgTable shows an organisation.
func orgTable(w io.Writer, o client.Org) {
	fmt.Fprintf(w, "ID\t%s\nNAME\t%s\nTIME ZONE\t%s\nADDED ROLES\t%s\nALL ROLES\t%s\n", o.ID, o.Name, o.TimeZone,
		dash(o.Roles), dash(o.AllRoles))
}

func usersTable(w io.Writer, us []client.User) {
	fmt.Fprintln(w, "ID\tEMAIL\tNAME\tROLES\tTEAMS\tLEADS\tSTATUS")
	for _, u := range us {
		status := "active"
		if u.Disabled {
			status = "disabled"
		} else if !u.HasPassword {
			status = "no password"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Name, dash(u.Roles), dash(u.Teams), dash(u.Leads), status)
	}
}

func teamsTable(w io.Writer, ts []client.Team) {
	fmt.Fprintln(w, "ID\tNAME")
	for _, t := range ts {
		fmt.Fprintf(w, "%s\t%s\n", t.ID, t.Name)
	}
}

func dash(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return strings.Join(xs, ",")
}

// apiClient is an admin command's connection to the admin API: where the
// server is, how to authenticate, and how to print the reply.
type apiClient struct {
	*client.Admin
	server, token, data, org string
	json                     bool
	stdout                   io.Writer
}

// authenticate settles the token: --token, FIELDSYNC_TOKEN, or one minted
// from the key files of --data for --org.
func (c *apiClient) authenticate() error {
	if c.token == "" {
		c.token = os.Getenv("FIELDSYNC_TOKEN")
	}
	if c.token != "" {
		if c.data != "" {
			return usageError("give --token or --data, not both")
		}
	} else {
		if c.data == "" || c.org == "" {
			return usageError("authenticate with --token (or FIELDSYNC_TOKEN), or with --data DIR --org ORG")
		}
		keys, err := jwtauth.Load(c.data)
		if err != nil {
			return err
		}
		if c.token, err = keys.Mint(c.org, "operator", []string{"admin"}, 5*time.Minute); err != nil {
			return err
		}
	}
	c.Admin = client.NewAdmin(c.server, c.token)
	return nil
}

// print writes v as JSON with --json, else the table.
func (c *apiClient) print(v any, table func(io.Writer)) error {
	if c.json {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// readPasswordLine reads the password from the first line of r (a pipe or
// a file, never a command-line argument that shell history would keep).
func readPasswordLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usageError("--password-stdin: standard input holds no password")
	}
	return line, nil
}

// promptPassword asks twice on the terminal, without echo.
func promptPassword(stdin io.Reader, stderr io.Writer, label string) (string, error) {
	f, ok := stdin.(*os.File)
	if !ok || !isTerminal(stdin) {
		return "", usageError("no terminal to prompt on: use --password-stdin")
	}
	fmt.Fprintf(stderr, "%s: ", label)
	pw, err := readNoEcho(f)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(stderr, "Again: ")
	again, err := readNoEcho(f)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the passwords differ")
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	return pw, nil
}

// isTerminal reports whether r is a character device (a terminal).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
