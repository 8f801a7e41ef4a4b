// Package battery is the battery watch: it reads encoder and wearable
// battery rigs from their sources (INA219 and INA226 current monitors on
// I2C, MQTT telemetry, a UPS over NUT, or a simulated pack), estimates
// charge and time to empty with package power, and turns level changes
// into events (battery/<rig>/alert on the bus), a retained state topic per
// rig, Home Assistant discovery, Prometheus gauges, an HTTP API and a
// pre-show doctor check.
//
// Each source is a package under source/ (ina, mqttsrc, nutsrc, sim) with
// a Config of its own that validates itself, completes the rig's pack and
// opens a reader (source.Poller or source.Pusher); sources.go registers
// them in one table. A rig's entry is decoded into Rig for the keys every
// rig has and strictly into its source's type for the rest.
package battery
