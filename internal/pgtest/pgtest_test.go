package pgtest
import "testing"
func TestStart(t *testing.T) {
	c := New(t, nil)
	t.Log(c.Version, c.URL, c.NewDB(t))
}
