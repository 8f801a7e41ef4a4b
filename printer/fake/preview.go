package fake

import (
	"fmt"
	"image"
	"image/draw"
)

// Decode decodes a whole stream: the finished labels, then the unfinished
// one if anything was drawn after the last label end (a preview of a file
// without a cut still shows).
func Decode(lang string, data []byte, widthDots int) ([]*Label, error) {
	d, err := NewDecoder(lang, widthDots)
	if err != nil {
		return nil, err
	}
	var labels []*Label
	for _, ev := range d.Feed(data) {
		if ev.Kind == EventLabel {
			labels = append(labels, ev.Label)
		}
	}
	if l := d.Flush(); l != nil {
		labels = append(labels, l)
	}
	return labels, nil
}

// Render decodes data in lang and draws each label on paper widthDots wide
// (384 for 58 mm, 576 for 80 mm at 203 dpi), one image per label.
func Render(lang string, data []byte, widthDots int) ([]image.Image, error) {
	if widthDots <= 0 {
		widthDots = 384
	}
	labels, err := Decode(lang, data, widthDots)
	if err != nil {
		return nil, err
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("fake printer: %s stream of %d bytes draws nothing", lang, len(data))
	}
	imgs := make([]image.Image, len(labels))
	for i, l := range labels {
		imgs[i] = renderLabel(l, widthDots)
	}
	return imgs, nil
}

// RenderPNG is Render with all labels stacked top to bottom in one PNG,
// separated by a grey tear line: what `print --preview` writes.
func RenderPNG(lang string, data []byte, widthDots int) ([]byte, error) {
	imgs, err := Render(lang, data, widthDots)
	if err != nil {
		return nil, err
	}
	if len(imgs) == 1 {
		return encodePNG(imgs[0])
	}
	const gap = 4
	w, h := 0, 0
	for _, img := range imgs {
		w = max(w, img.Bounds().Dx())
		h += img.Bounds().Dy() + gap
	}
	sheet := image.NewGray(image.Rect(0, 0, w, h))
	draw.Draw(sheet, sheet.Bounds(), &image.Uniform{C: paperGray}, image.Point{}, draw.Src)
	y := 0
	for _, img := range imgs {
		r := image.Rect(0, y, img.Bounds().Dx(), y+img.Bounds().Dy())
		draw.Draw(sheet, r, img, img.Bounds().Min, draw.Src)
		y += img.Bounds().Dy() + gap
	}
	return encodePNG(sheet)
}
