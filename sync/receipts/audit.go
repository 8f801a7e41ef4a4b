package receipts

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The privacy audit: a buyer who asked for discreet checkout must be
// named nowhere the box keeps. The ledger holds only an opaque token for
// such a sale, so the audit cannot look for the buyer's name itself; it
// looks, in each discreet record and in every log line that refers to a
// discreet sale (by its order number, client_id, token or pickup-label
// job id), for what identifies a person: a buyer field with a value
// (name, phone, email in key=value or JSON form), an email address, or
// an international phone number. A log line that says "discreet":true is
// checked the same way, whether or not its sale was written.

// Finding is one place where a discreet buyer's data was found.
type Finding struct {
	// Where is "ledger record N" or "FILE:LINE".
	Where string `json:"where"`
	// Sale is the discreet sale's seq (0: a line about a discreet order
	// that was never written, or could not be told).
	Sale  uint64 `json:"sale,omitempty"`
	Order string `json:"order,omitempty"`
	// What was found, with its value masked.
	What string `json:"what"`
}

func (f Finding) String() string {
	ref := "a discreet order"
	if f.Sale != 0 {
		ref = fmt.Sprintf("discreet sale %d (order %s)", f.Sale, f.Order)
	}
	return fmt.Sprintf("%s: %s: %s", f.Where, ref, f.What)
}

// Audit collects the discreet sales of a ledger, then checks log lines.
type Audit struct {
	box string
	// ids maps each identifier of a discreet sale to it.
	ids      map[string]OrderRef
	Sales    int // sales read
	Discreet int // of which discreet
	Lines    int // log lines read
	Findings []Finding
}

// NewAudit starts an audit of box's ledger and logs.
func NewAudit(box string) *Audit { return &Audit{box: box, ids: map[string]OrderRef{}} }

var (
	emailRE = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)
	phoneRE = regexp.MustCompile(`\+[0-9][0-9 ()/.-]{5,}[0-9]`)
	// A buyer field with a value: key=value, key="value" (slog text) or
	// "key":"value" (JSON), the key possibly dotted (buyer.name).
	piiKeyRE   = regexp.MustCompile(`(?i)\b((?:buyer|customer)(?:[._](?:name|phone|email))?|name|full_?name|phone|tel|mobile|email|e-mail)\\?"?\s*[=:]\s*\\?("(?:[^"\\]|\\.)*"|[^\s,{}\[\]"][^\s,}\]]*)`)
	discreetRE = regexp.MustCompile(`discreet\\?"?\s*[=:]\s*\\?"?true`)
)

// Record takes one ledger record: a discreet sale is remembered, and its
// record checked for anything but the token.
func (a *Audit) Record(s Signed) {
	r, err := s.Decode()
	if err != nil || r.Type != TypeSale {
		return
	}
	a.Sales++
	if r.Buyer == nil || r.Buyer.Token == "" {
		return
	}
	a.Discreet++
	ref := OrderRef{Seq: r.Seq, Order: r.Order}
	where := fmt.Sprintf("ledger record %d", r.Seq)
	add := func(what string) {
		a.Findings = append(a.Findings, Finding{Where: where, Sale: r.Seq, Order: r.Order, What: what})
	}
	for k, v := range map[string]string{"name": r.Buyer.Name, "phone": r.Buyer.Phone, "email": r.Buyer.Email} {
		if v != "" {
			add(fmt.Sprintf("the record keeps the buyer's %s %s beside the token", k, Mask(v)))
		}
	}
	texts := []string{r.Order, r.ClientID}
	for _, it := range r.Items {
		texts = append(texts, it.SKU)
	}
	for _, t := range texts {
		for _, w := range piiIn(t, false) {
			add("the record's text holds " + w)
		}
	}
	for _, id := range []string{r.Order, r.ClientID, r.Buyer.Token, fmt.Sprintf("receipt-%s-%d", a.box, r.Seq)} {
		if id != "" {
			a.ids[id] = ref
		}
	}
}

// Log checks the lines of a log file; name is how findings name it.
func (a *Audit) Log(name string, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	n := 0
	for sc.Scan() {
		n++
		a.Lines++
		a.Line(fmt.Sprintf("%s:%d", name, n), sc.Text())
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("audit %s: line %d: %w", name, n+1, err)
	}
	return nil
}

// Line checks one log line.
func (a *Audit) Line(where, line string) {
	refs := a.refersTo(line)
	if len(refs) == 0 && !discreetRE.MatchString(line) {
		return
	}
	found := piiIn(line, true)
	if len(found) == 0 {
		return
	}
	if len(refs) == 0 {
		refs = []OrderRef{{}}
	}
	for _, ref := range refs {
		for _, w := range found {
			a.Findings = append(a.Findings, Finding{Where: where, Sale: ref.Seq, Order: ref.Order, What: "the log line holds " + w})
		}
	}
}

// refersTo returns the discreet sales whose identifiers appear in line as
// whole words.
func (a *Audit) refersTo(line string) []OrderRef {
	var out []OrderRef
	seen := map[uint64]bool{}
	for id, ref := range a.ids {
		if seen[ref.Seq] {
			continue
		}
		if containsWord(line, id) {
			seen[ref.Seq] = true
			out = append(out, ref)
		}
	}
	return out
}

// containsWord reports whether id appears in s with no letter or digit
// right before or after it (so order A-1 is not found in A-10).
func containsWord(s, id string) bool {
	for off := 0; ; {
		i := strings.Index(s[off:], id)
		if i < 0 {
			return false
		}
		i += off
		before, _ := utf8.DecodeLastRuneInString(s[:i])
		after, _ := utf8.DecodeRuneInString(s[i+len(id):])
		if !isWordRune(before) && !isWordRune(after) {
			return true
		}
		off = i + 1
	}
}

func isWordRune(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// piiIn lists what in s identifies a person, masked. keys also looks for
// buyer fields with a value (in log lines; a record's text has none).
func piiIn(s string, keys bool) []string {
	var out []string
	if keys {
		for _, m := range piiKeyRE.FindAllStringSubmatch(s, -1) {
			v := strings.Trim(m[2], `"\`)
			if v == "" || v == "null" || strings.EqualFold(v, "true") || strings.EqualFold(v, "false") {
				continue
			}
			out = append(out, fmt.Sprintf("a buyer field %s=%s", strings.ToLower(m[1]), Mask(v)))
		}
	}
	for _, m := range emailRE.FindAllString(s, -1) {
		out = append(out, "an email address "+Mask(m))
	}
	for _, m := range phoneRE.FindAllString(s, -1) {
		out = append(out, "a phone number "+Mask(m))
	}
	return out
}

// Mask shows enough of a value to find it again, not to read it: its
// first two characters and its length.
func Mask(v string) string {
	r := []rune(v)
	if len(r) <= 2 {
		return fmt.Sprintf("%q (%d characters)", strings.Repeat("*", len(r)), len(r))
	}
	return fmt.Sprintf("%q (%d characters)", string(r[:2])+strings.Repeat("*", min(len(r)-2, 8)), len(r))
}
