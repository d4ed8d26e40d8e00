package docs

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// page is what the checks need from one Markdown file.
type page struct {
	path    string          // as given, for messages
	anchors map[string]bool // GitHub's anchor of every heading
	links   []ref           // targets of [text](target) and [label]: target
	code    []ref           // inline code spans and fenced code lines
}

// ref is a piece of a page with the line it came from, so failures point at it.
type ref struct {
	line int
	text string
}

var (
	codeSpan   = regexp.MustCompile("`[^`]*`")
	inlineLink = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]*)(?:\s+"[^"]*")?\)`)
	refLink    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*(\S+)`)
	heading    = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$`)
	fence      = regexp.MustCompile("^\\s{0,3}(```|~~~)")
	linkText   = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// repoRoot is the module root: the tests run in docs/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	return root
}

// pages lists README.md and docs/*.md, relative to root.
func pages(t *testing.T, root string) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md under %s (err %v)", root, err)
	}
	out := []string{"README.md"}
	for _, d := range docs {
		rel, _ := filepath.Rel(root, d)
		out = append(out, rel)
	}
	return out
}

// parsePage reads a Markdown file. Headings and links inside code (fenced blocks, inline spans)
// are not headings or links, as GitHub renders them.
func parsePage(path string) (*page, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := &page{path: path, anchors: map[string]bool{}}
	seen := map[string]int{}
	inFence := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20) // table rows run to a few KiB
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := fence.FindStringSubmatch(line); m != nil {
			switch inFence {
			case "":
				inFence = m[1] // opens a block
				continue
			case m[1]:
				inFence = "" // closes it
				continue
			}
		}
		if inFence != "" {
			p.code = append(p.code, ref{n, line})
			continue
		}
		for _, c := range codeSpan.FindAllString(line, -1) {
			p.code = append(p.code, ref{n, strings.Trim(c, "`")})
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			p.anchors[uniqueAnchor(slug(m[2]), seen)] = true
		}
		prose := codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(prose, -1) {
			p.links = append(p.links, ref{n, m[1]})
		}
		if m := refLink.FindStringSubmatch(prose); m != nil {
			p.links = append(p.links, ref{n, m[1]})
		}
	}
	return p, sc.Err()
}

// slug is GitHub's heading anchor: the rendered text (code spans and link texts kept, markup
// gone) lowercased, every character but letters, digits, '_', '-' and spaces dropped, and
// spaces turned into '-'.
func slug(h string) string {
	h = linkText.ReplaceAllString(h, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// uniqueAnchor numbers repeated slugs as GitHub does: "x", "x-1", "x-2".
func uniqueAnchor(s string, seen map[string]int) string {
	n := seen[s]
	seen[s] = n + 1
	if n == 0 {
		return s
	}
	return s + "-" + strconv.Itoa(n)
}

func TestSlug(t *testing.T) {
	for _, tc := range []struct{ heading, want string }{
		{"Batching without waiting for nothing", "batching-without-waiting-for-nothing"},
		{"`ferry bench`", "ferry-bench"},
		{"`config.pbtxt`", "configpbtxt"},
		{"The load generator has its own HTTP/2 client", "the-load-generator-has-its-own-http2-client"},
		{"On-demand loading", "on-demand-loading"},
		{"snake_case and [a link](x.md)", "snake_case-and-a-link"},
	} {
		if got := slug(tc.heading); got != tc.want {
			t.Errorf("slug(%q) = %q, want %q", tc.heading, got, tc.want)
		}
	}
}

// TestLinksResolve: every relative link in README.md and docs/*.md names a file in the
// repository, and every #anchor a heading of the page it points to.
func TestLinksResolve(t *testing.T) {
	root := repoRoot(t)
	parsed := map[string]*page{}
	load := func(rel string) (*page, error) {
		if p, ok := parsed[rel]; ok {
			return p, nil
		}
		p, err := parsePage(filepath.Join(root, rel))
		parsed[rel] = p
		return p, err
	}
	for _, rel := range pages(t, root) {
		p, err := load(rel)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		for _, l := range p.links {
			if msg := checkLink(root, rel, l.text, load); msg != "" {
				t.Errorf("%s:%d: link %q: %s", rel, l.line, l.text, msg)
			}
		}
	}
}

// checkLink returns what is wrong with target as written in page from, or "".
func checkLink(root, from, target string, load func(string) (*page, error)) string {
	if isExternal(target) {
		return ""
	}
	file, anchor, _ := strings.Cut(target, "#")
	rel := from
	if file != "" {
		rel = filepath.Clean(filepath.Join(filepath.Dir(from), filepath.FromSlash(file)))
		if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(file) {
			return "points outside the repository (GitHub cannot show it)"
		}
		if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
			return "no such file " + rel
		}
	}
	if anchor == "" {
		return ""
	}
	if !strings.HasSuffix(rel, ".md") {
		return "an anchor into " + rel + ", which is not Markdown"
	}
	p, err := load(rel)
	if err != nil {
		return err.Error()
	}
	if !p.anchors[anchor] {
		return "no heading in " + rel + " has the anchor #" + anchor
	}
	return ""
}

// isExternal: a URL with a scheme (https:, mailto:) is not the repository's to check.
func isExternal(target string) bool {
	i := strings.IndexByte(target, ':')
	return i > 0 && !strings.ContainsAny(target[:i], "/#.")
}

// repoPath finds the repository paths a piece of code names: cmd/..., internal/..., tools/...,
// with or without a leading "./".
var repoPath = regexp.MustCompile(`(?:^|[\s(="'])(?:\./)?((?:cmd|internal|tools)/[A-Za-z0-9_./-]*[A-Za-z0-9_])`)

// TestQuotedPathsExist: the packages, files and tools the pages quote still exist, so that a
// rename (issue 15 moves several) cannot leave the docs pointing at nothing.
func TestQuotedPathsExist(t *testing.T) {
	root := repoRoot(t)
	for _, rel := range pages(t, root) {
		p, err := parsePage(filepath.Join(root, rel))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		for _, c := range p.code {
			for _, m := range repoPath.FindAllStringSubmatch(c.text, -1) {
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(m[1]))); err != nil {
					t.Errorf("%s:%d: quotes %s, which does not exist", rel, c.line, m[1])
				}
			}
		}
	}
}

// TestEveryPageLinkedFromReadme: a page nobody links to is a page nobody finds.
func TestEveryPageLinkedFromReadme(t *testing.T) {
	root := repoRoot(t)
	readme, err := parsePage(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]bool{}
	for _, l := range readme.links {
		file, _, _ := strings.Cut(l.text, "#")
		linked[filepath.Clean(filepath.FromSlash(file))] = true
	}
	for _, rel := range pages(t, root)[1:] {
		if !linked[rel] {
			t.Errorf("README.md does not link to %s", rel)
		}
	}
}
