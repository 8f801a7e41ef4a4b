// Package labeltest holds sample labels that exercise every element and
// option, shared by the encoders' golden tests and the fake printer's
// rendering tests.
package labeltest

import "fieldkit/printer/label"

// Sample is a named label.
type Sample struct {
	Name  string
	Label label.Label
}

// Samples returns the sample labels, in a fixed order; golden files are
// named after them.
func Samples() []Sample {
	return []Sample{
		{"text-styles", label.Label{Elements: []label.Element{
			label.Text{Text: "plain"},
			label.Text{Text: "BIG", Size: 4, Bold: true, Align: label.Center},
			label.Text{Text: "under", Underline: true, Align: label.Right},
			label.Text{Text: "size 2 bold", Size: 2, Bold: true},
			label.Text{Text: "back to plain"},
			label.Cut{},
		}}},
		{"non-ascii", label.Label{Elements: []label.Element{
			label.Text{Text: "Grüße aus Köln – 12,50 €"},
			label.Text{Text: "“Zoë” ½ Łódź ß"},
			label.Cut{},
		}}},
		{"code128", label.Label{Elements: []label.Element{
			label.Code128{Data: "A-1042", Align: label.Center},
			label.Code128{Data: "{x}", Height: 40, HideText: true},
			label.Feed{Lines: 3},
		}}},
		{"qr", label.Label{Elements: []label.Element{
			label.QR{Data: "https://fieldkit.example/r/8F3KQ2", Module: 6, EC: label.ECM, Align: label.Center},
			label.QR{Data: "L", Module: 3, EC: label.ECL},
			label.QR{Data: "Q-level", EC: label.ECQ, Align: label.Right},
			label.QR{Data: "H^~\\_level", Module: 2, EC: label.ECH},
			label.Cut{},
		}}},
		{"pickup", label.Label{ID: "A-1042", Elements: []label.Element{
			label.Text{Text: "A-1042", Size: 4, Bold: true, Align: label.Center},
			label.Text{Text: "Ada L.", Size: 2, Align: label.Center},
			label.Text{Text: "1 x Tee black M     25.00"},
			label.Text{Text: "Total 25.00 EUR", Bold: true},
			label.QR{Data: "https://fieldkit.example/r/8F3KQ2", Module: 5, Align: label.Center},
			label.Code128{Data: "A-1042", Height: 48, Align: label.Center},
			label.Feed{Lines: 2},
			label.Cut{},
		}}},
	}
}
