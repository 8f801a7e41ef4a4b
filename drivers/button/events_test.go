package button

import "fieldkit/internal/bus"

// The agent's bus is what a button declares it needs.
var _ Events = (*bus.Bus)(nil)
