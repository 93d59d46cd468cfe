package retention

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/packreg/packreg/digest"
	"github.com/packreg/packreg/storage"
)

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// ver is a version of pack "p" published ago before t0.
func ver(v, status string, ago time.Duration) Version {
	return Version{Name: "p", Version: v, Digest: digest.FromBytes(digest.SHA256, []byte(v)), Status: status, Created: t0.Add(-ago)}
}

func archived(v string, ago, archivedAgo time.Duration) Version {
	x := ver(v, storage.PackArchived, ago)
	x.ArchivedAt = t0.Add(-archivedAgo)
	return x
}

// actions is the plan as "version:action" in plan order.
func actions(items []Item) string {
	var out []string
	for _, it := range items {
		out = append(out, it.Version+":"+it.Action)
	}
	return strings.Join(out, " ")
}

func TestPlan(t *testing.T) {
	const (
		A = storage.PackActive
		D = storage.PackDeprecated
	)
	for _, c := range []struct {
		name     string
		rule     Rule
		versions []Version
		signed   []string // versions signed and verified
		want     string
	}{
		{"keep N newest active, semver order not age order", Rule{KeepActive: ptr(2)},
			[]Version{ver("1.10.0", A, day), ver("1.9.0", A, 0), ver("1.2.0", A, 2*day), ver("2.0.0-rc.1", A, 0)},
			nil, "2.0.0-rc.1:keep 1.10.0:keep 1.9.0:deprecate 1.2.0:deprecate"},
		{"keep N counts active versions only", Rule{KeepActive: ptr(1)},
			[]Version{ver("3.0.0", D, 0), ver("2.0.0", A, 0), ver("1.0.0", A, 0)},
			nil, "3.0.0:keep 2.0.0:keep 1.0.0:deprecate"},
		{"keep 0 acts on every active version", Rule{KeepActive: ptr(0), KeepActiveAction: ActionArchive},
			[]Version{ver("2.0.0", A, 0), ver("1.0.0", D, 0)},
			nil, "2.0.0:archive 1.0.0:keep"},
		{"deprecate_after at the boundary acts, a second before does not", Rule{DeprecateAfter: ptr(day)},
			[]Version{ver("3.0.0", A, day), ver("2.0.0", A, day-time.Second), ver("1.0.0", D, 9*day)},
			nil, "3.0.0:deprecate 2.0.0:keep 1.0.0:keep"},
		{"archive_after takes active and deprecated, and wins over deprecate", Rule{DeprecateAfter: ptr(day), ArchiveAfter: ptr(7 * day)},
			[]Version{ver("3.0.0", A, 7*day), ver("2.0.0", D, 7*day), ver("1.0.0", A, 2*day)},
			nil, "3.0.0:archive 2.0.0:archive 1.0.0:deprecate"},
		{"the N newest active are kept whatever their age", Rule{KeepActive: ptr(1), ArchiveAfter: ptr(day)},
			[]Version{ver("2.0.0", A, 9*day), ver("1.0.0", A, 9*day)},
			nil, "2.0.0:keep 1.0.0:archive"},
		{"delete archived after, counted from the archiving", Rule{DeleteArchivedAfter: ptr(30 * day)},
			[]Version{archived("3.0.0", 90*day, 30*day), archived("2.0.0", 90*day, 30*day-time.Second), archived("1.0.0", 90*day, 0)},
			nil, "3.0.0:delete 2.0.0:keep 1.0.0:keep"},
		{"signed and verified is kept without force", Rule{DeleteArchivedAfter: ptr(day)},
			[]Version{archived("2.0.0", 9*day, 9*day), archived("1.0.0", 9*day, 9*day)},
			[]string{"2.0.0"}, "2.0.0:keep 1.0.0:delete"},
		{"signed and verified is deleted with force", Rule{DeleteArchivedAfter: ptr(day), Force: true},
			[]Version{archived("2.0.0", 9*day, 9*day)},
			[]string{"2.0.0"}, "2.0.0:delete"},
		{"archived with no known archive time is kept", Rule{DeleteArchivedAfter: ptr(day)},
			[]Version{archived("1.0.0", 9*day, 0), {Name: "p", Version: "0.1.0", Status: storage.PackArchived, Created: t0.Add(-9 * day)}},
			nil, "1.0.0:keep 0.1.0:keep"},
		{"archived versions are never deprecated or archived again", Rule{KeepActive: ptr(0), ArchiveAfter: ptr(time.Second)},
			[]Version{archived("1.0.0", 9*day, day)},
			nil, "1.0.0:keep"},
		{"deleted versions are left out", Rule{ArchiveAfter: ptr(time.Second)},
			[]Version{ver("1.0.0", storage.PackDeleted, 9*day)},
			nil, ""},
		{"non-semver versions sort last and are not ranked", Rule{KeepActive: ptr(1)},
			[]Version{ver("latest", A, 0), ver("1.0.0", A, 0), ver("0.9.0", A, 0)},
			nil, "1.0.0:keep 0.9.0:deprecate latest:keep"},
		{"a rule with no part keeps everything", Rule{},
			[]Version{ver("1.0.0", A, 900*day), archived("0.1.0", 900*day, 900*day)},
			nil, "1.0.0:keep 0.1.0:keep"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.rule.Repositories = []string{"p"}
			asked := map[string]bool{}
			verified := func(_ context.Context, name string, d digest.Digest) (bool, error) {
				for _, v := range c.signed {
					if digest.FromBytes(digest.SHA256, []byte(v)) == d {
						asked[v] = true
						return true, nil
					}
				}
				return false, nil
			}
			items, err := Plan(t.Context(), Config{Rules: []Rule{c.rule}}, t0, c.versions, verified)
			if err != nil {
				t.Fatal(err)
			}
			if got := actions(items); got != c.want {
				t.Fatalf("plan = %q, want %q\n%+v", got, c.want, items)
			}
			for _, it := range items {
				if it.Reason == "" || it.Rule != 0 || it.Name != "p" {
					t.Errorf("item %+v: want a reason, rule 0, name p", it)
				}
			}
			if c.rule.Force && len(asked) > 0 {
				t.Errorf("a forced rule asked for signatures: %v", asked)
			}
		})
	}
}

// TestPlanFirstRuleWins: a pack follows the first rule that covers it,
// and packs no rule covers are left out.
func TestPlanFirstRuleWins(t *testing.T) {
	c := Config{Rules: []Rule{
		{Repositories: []string{"acme/keep/**"}},
		{Repositories: []string{"acme/**", "other"}, ArchiveAfter: ptr(day)},
	}}
	var vs []Version
	for _, name := range []string{"acme/keep/x", "acme/y", "other", "else"} {
		v := ver("1.0.0", storage.PackActive, 2*day)
		v.Name = name
		vs = append(vs, v)
	}
	items, err := Plan(t.Context(), c, t0, vs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, fmt.Sprintf("%s:%s:%d", it.Name, it.Action, it.Rule))
	}
	if s := strings.Join(got, " "); s != "acme/keep/x:keep:0 acme/y:archive:1 other:archive:1" {
		t.Fatalf("plan = %s", s)
	}
}

// TestPlanVerifierError: a plan that cannot tell whether a version is
// signed fails rather than delete it.
func TestPlanVerifierError(t *testing.T) {
	boom := errors.New("database down")
	_, err := Plan(t.Context(), Config{Rules: []Rule{{Repositories: []string{"**"}, DeleteArchivedAfter: ptr(time.Second)}}}, t0,
		[]Version{archived("1.0.0", day, day)}, func(context.Context, string, digest.Digest) (bool, error) { return false, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Plan = %v, want %v", err, boom)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Schedule: time.Hour, Rules: []Rule{{Repositories: []string{"acme/**"}, KeepActive: ptr(0),
		KeepActiveAction: ActionArchive, DeprecateAfter: ptr(day), ArchiveAfter: ptr(2 * day), DeleteArchivedAfter: ptr(day), Force: true},
		{Repositories: []string{"**"}}}}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	for _, c := range []struct {
		name string
		rule Rule
		want string
	}{
		{"no pattern", Rule{}, "retention.rules[0]: repositories: at least one pattern"},
		{"bad pattern", Rule{Repositories: []string{"a/**/b"}}, `pattern "a/**/b"`},
		{"negative keep", Rule{Repositories: []string{"**"}, KeepActive: ptr(-1)}, "keep_active: 0 or more, got -1"},
		{"bad keep action", Rule{Repositories: []string{"**"}, KeepActive: ptr(1), KeepActiveAction: "delete"}, `keep_active_action "delete"`},
		{"keep action alone", Rule{Repositories: []string{"**"}, KeepActiveAction: ActionArchive}, "keep_active_action needs keep_active"},
		{"zero duration", Rule{Repositories: []string{"**"}, DeprecateAfter: ptr(time.Duration(0))}, "deprecate_after: a positive duration"},
		{"negative duration", Rule{Repositories: []string{"**"}, DeleteArchivedAfter: ptr(-time.Hour)}, "delete_archived_after: a positive duration"},
		{"force alone", Rule{Repositories: []string{"**"}, Force: true}, "force applies to delete_archived_after"},
	} {
		err := Config{Rules: []Rule{c.rule}}.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate = %v, want %q", c.name, err, c.want)
		}
	}
	if err := (Config{Schedule: -time.Second}).Validate(); err == nil {
		t.Error("a negative schedule validated")
	}
}
