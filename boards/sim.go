package boards

import (
	"fmt"
	"sort"
	"sync"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// Sim is the simulated board: periph gpiotest pins, I2C buses whose
// devices are emulators attached by address, and SPI ports that record
// what is sent. The whole agent runs on it on a laptop, and the status API
// shows its state.
type Sim struct {
	profile Profile
	pins    map[string]string

	mu    sync.Mutex
	lines map[string]*gpiotest.Pin
	buses map[string]*SimBus
	ports map[string]*SimPort
}

// NewSim returns a sim board with the given logical pin names.
func NewSim(pins map[string]string) *Sim {
	return &Sim{profile: Profiles["sim"], pins: pins, lines: map[string]*gpiotest.Pin{},
		buses: map[string]*SimBus{}, ports: map[string]*SimPort{}}
}

func (s *Sim) Profile() Profile { return s.profile }
func (s *Sim) Model() string    { return "simulated board" }

// Pin returns the gpiotest pin for a logical or line name; the same line
// always yields the same pin.
func (s *Sim) Pin(name string) (gpio.PinIO, error) {
	p, err := s.Line(name)
	if err != nil {
		return nil, err
	}
	return simPin{p}, nil
}

// simPin is a sim line as drivers use it: like a real pin, a steady level
// ends PWM, so the status shows what the pin is doing now rather than a
// duty cycle left over from an earlier cue.
type simPin struct{ *gpiotest.Pin }

func (p simPin) Out(l gpio.Level) error {
	p.Lock()
	defer p.Unlock()
	p.L, p.D, p.F = l, 0, 0
	return nil
}

func (p simPin) PWM(duty gpio.Duty, f physic.Frequency) error {
	p.Lock()
	defer p.Unlock()
	p.D, p.F = duty, f
	// The line is driven (high for part of each period) while the duty
	// is above zero.
	p.L = gpio.Level(duty > 0 && f > 0)
	return nil
}

// Line is Pin returning the concrete fake, for tests and the demo.
func (s *Sim) Line(name string) (*gpiotest.Pin, error) {
	line, err := s.profile.Resolve(name, s.pins)
	if err != nil {
		return nil, err
	}
	var num int
	fmt.Sscanf(line, "GPIO%d", &num)
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.lines[line]
	if !ok {
		p = &gpiotest.Pin{N: line, Num: num, EdgesChan: make(chan gpio.Level, 16)}
		s.lines[line] = p
	}
	return p, nil
}

// Press injects a press-and-release edge pair on an input pin, as a
// finger on a button would (active low, pull-up wiring).
func (s *Sim) Press(name string) error {
	p, err := s.Line(name)
	if err != nil {
		return err
	}
	select {
	case p.EdgesChan <- gpio.Low:
	default:
		return fmt.Errorf("sim pin %s: edge queue full", p.N)
	}
	select {
	case p.EdgesChan <- gpio.High:
	default:
	}
	return nil
}

// I2C returns the emulated bus by number.
func (s *Sim) I2C(bus string) (i2c.Bus, error) { return s.Bus(bus), nil }

// Bus is I2C returning the concrete emulated bus.
func (s *Sim) Bus(bus string) *SimBus {
	if bus == "" {
		bus = s.profile.I2C
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buses[bus]
	if !ok {
		b = &SimBus{name: bus, devs: map[uint16]SimDevice{}}
		s.buses[bus] = b
	}
	return b
}

// SPI returns a recording port.
func (s *Sim) SPI(port string) (spi.PortCloser, error) {
	if port == "" {
		port = s.profile.SPI
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.ports[port]
	if !ok {
		p = &SimPort{name: port}
		s.ports[port] = p
	}
	return p, nil
}

// SimPinStatus is a sim pin's state in Status.
type SimPinStatus struct {
	Line  string   `json:"line"`
	Names []string `json:"names,omitempty"`
	Level bool     `json:"level"`
	Duty  float64  `json:"duty_percent,omitempty"`
	Hz    float64  `json:"pwm_hz,omitempty"`
}

// Status is every pin touched so far (with its logical names), and how
// many frames each SPI port has sent.
func (s *Sim) Status() any {
	names := map[string][]string{}
	for n, l := range s.profile.Pins {
		if _, over := s.pins[n]; !over {
			names[l] = append(names[l], n)
		}
	}
	for n, l := range s.pins {
		names[l] = append(names[l], n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pins := make([]SimPinStatus, 0, len(s.lines))
	for line, p := range s.lines {
		p.Lock()
		st := SimPinStatus{Line: line, Level: bool(p.L)}
		if p.F != 0 && p.D != 0 {
			st.Duty = float64(p.D) * 100 / float64(gpio.DutyMax)
			st.Hz = float64(p.F) / float64(physic.Hertz)
		}
		p.Unlock()
		st.Names = names[line]
		sort.Strings(st.Names)
		pins = append(pins, st)
	}
	sort.Slice(pins, func(i, j int) bool { return pins[i].Line < pins[j].Line })
	spiFrames := map[string]int{}
	for n, p := range s.ports {
		spiFrames[n] = p.Frames()
	}
	return map[string]any{"profile": "sim", "pins": pins, "spi_frames": spiFrames}
}

// PinLevel is a convenience for tests and the status page.
func (s *Sim) PinLevel(name string) (gpio.Level, error) {
	p, err := s.Line(name)
	if err != nil {
		return gpio.Low, err
	}
	return p.Read(), nil
}

func (s *Sim) Close() error { return nil }

// SimDevice emulates one I2C device: it sees each transaction's write
// bytes and fills the read buffer.
type SimDevice interface {
	Tx(w, r []byte) error
}

// SimBus routes transactions to emulated devices by address; an address
// with no device fails like a NACK.
type SimBus struct {
	name string
	mu   sync.Mutex
	devs map[uint16]SimDevice
}

// Attach puts dev at addr.
func (b *SimBus) Attach(addr uint16, dev SimDevice) {
	b.mu.Lock()
	b.devs[addr] = dev
	b.mu.Unlock()
}

func (b *SimBus) String() string { return "sim-i2c" + b.name }

func (b *SimBus) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	dev := b.devs[addr]
	b.mu.Unlock()
	if dev == nil {
		return fmt.Errorf("sim I2C bus %s: no device answers at address %#02x", b.name, addr)
	}
	return dev.Tx(w, r)
}

func (b *SimBus) SetSpeed(physic.Frequency) error { return nil }

// SimPort is a recording SPI port.
type SimPort struct {
	name   string
	mu     sync.Mutex
	frames int
	last   []byte
}

func (p *SimPort) String() string                    { return "sim-spi" + p.name }
func (p *SimPort) Close() error                      { return nil }
func (p *SimPort) LimitSpeed(physic.Frequency) error { return nil }

func (p *SimPort) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	return simConn{p}, nil
}

// Frames is how many transfers were sent.
func (p *SimPort) Frames() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frames
}

// Last is a copy of the last transfer.
func (p *SimPort) Last() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.last...)
}

type simConn struct{ p *SimPort }

func (c simConn) String() string      { return c.p.String() }
func (c simConn) Duplex() conn.Duplex { return conn.Full }
func (c simConn) Tx(w, r []byte) error {
	c.p.mu.Lock()
	c.p.frames++
	c.p.last = append(c.p.last[:0], w...)
	c.p.mu.Unlock()
	return nil
}

func (c simConn) TxPackets(ps []spi.Packet) error {
	for _, pk := range ps {
		if err := c.Tx(pk.W, pk.R); err != nil {
			return err
		}
	}
	return nil
}
