package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ccr-infuse/infuse/access"
	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/match"
)

// Lists of officers, time entries and expenditure lines, for the API and the pages. The
// filters and the keyset page come from the query string; package match decides what the
// caller may see (access.Can: a finance officer reads only their own authority's officers and
// time) and answers a page newest first with the id of the next.

// listFilter reads a list's filters and page from the query string q.
func listFilter(q url.Values) (match.ListFilter, error) {
	f := match.ListFilter{Authority: strings.TrimSpace(q.Get("authority")), PayrollRef: strings.TrimSpace(q.Get("payroll_ref")),
		Heading: strings.TrimSpace(q.Get("heading")), Period: strings.TrimSpace(q.Get("period")),
		Status: match.Status(strings.TrimSpace(q.Get("status")))}
	return f, keysetPage(q, &f.Before, &f.Limit)
}

// keysetPage reads a keyset page from the query string q: before, the id to page back from, and
// limit, the rows a page. Either may be left out (0); the reader checks their range.
func keysetPage(q url.Values, before *int64, limit *int) error {
	for _, p := range []struct {
		name string
		bits int
		set  func(int64)
	}{{"before", 64, func(n int64) { *before = n }}, {"limit", 32, func(n int64) { *limit = int(n) }}} {
		v := strings.TrimSpace(q.Get(p.name))
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, p.bits)
		if err != nil {
			return apperr.New(apperr.Invalid, match.RuleFormat, "%s %q is not a whole number", p.name, v)
		}
		p.set(n)
	}
	return nil
}

// listQuery is the query string of f's page before (0 for the newest page), without the page
// size, for the pages' links.
func listQuery(path string, f match.ListFilter, before int64) string {
	q := url.Values{}
	for k, v := range map[string]string{"authority": f.Authority, "payroll_ref": f.PayrollRef, "heading": f.Heading,
		"period": f.Period, "status": string(f.Status)} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if before > 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// writeList answers a page of a list: its items under key, and next_before when a page follows.
func writeList(w http.ResponseWriter, key string, items any, next int64) {
	body := map[string]any{key: items}
	if next > 0 {
		body["next_before"] = next
	}
	writeJSON(w, http.StatusOK, body)
}

// listAPI is the handler of a list route: the page list reads for the caller and the filters
// of the query string, each item as out makes it, under key.
func listAPI[T, J any](key string, list func(context.Context, access.User, match.ListFilter) (match.Page[T], error),
	out func(T) J) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		f, err := listFilter(r.URL.Query())
		if err != nil {
			return err
		}
		p, err := list(r.Context(), user(r), f)
		if err != nil {
			return err
		}
		items := make([]J, len(p.Items))
		for i, it := range p.Items {
			items[i] = out(it)
		}
		writeList(w, key, items, p.Next)
		return nil
	}
}

// ---- the lists on the pages ----

// listView is a list's filter form and page links, for the "filters" and "pager" templates.
type listView struct {
	Action string  // the page the filter form and the links go to
	Fields []field // the filters
	Newest string  // link to the first page, when this is a later one
	Older  string  // link to the next page, when there is one

	Label, Submit, Pages, NewestText, OlderText string // in the page's language
}

// newListView returns the filter form and page links of the list on page path, filtered by f
// and followed by the page before next (0 on the last page).
func newListView(p *page, path string, f match.ListFilter, next int64, fields []field) *listView {
	v := &listView{Action: path, Fields: fields, Label: p.T("list.filter"), Submit: p.T("list.filter.submit"),
		Pages: p.T("list.pages"), NewestText: p.T("list.newest"), OlderText: p.T("list.older")}
	if f.Before > 0 {
		v.Newest = listQuery(path, f, 0)
	}
	if next > 0 {
		v.Older = listQuery(path, f, next)
	}
	return v
}

// allOption is a filter's first choice, which selects everything.
func allOption(p *page) option { return option{Value: "", Label: p.T("list.all")} }

// periodOptions are the programme's periods, for a filter.
func (s *Server) periodOptions(p *page) []option {
	out := []option{allOption(p)}
	for _, per := range s.cfg.Programme.Periods() {
		out = append(out, option{Value: per.Code, Label: per.Code})
	}
	return out
}

// statusOptions select live or reversed lines.
func statusOptions(p *page) []option {
	return []option{allOption(p), {Value: string(match.Live), Label: p.T("list.status.live")},
		{Value: string(match.Reversed), Label: p.T("list.status.reversed")}}
}

// readableAuthorities are the authorities whose records the caller may read, for a filter.
func (s *Server) readableAuthorities(p *page, r *http.Request) []option {
	out := []option{allOption(p)}
	for _, au := range s.cfg.Programme.Authorities {
		if authorize(r, access.ReadRecords, au.Code) == nil {
			out = append(out, option{Value: au.Code, Label: p.AuthName(au.Code) + " (" + au.Code + ")"})
		}
	}
	return out
}
