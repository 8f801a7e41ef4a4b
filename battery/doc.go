// Package battery is the battery watch: it reads encoder and wearable
// battery rigs from their sources (INA219 and INA226 current monitors on
// I2C, MQTT telemetry, a UPS over NUT, or a simulated pack), estimates
// charge and time to empty with package power, and turns level changes
// into events (battery/<rig>/alert on the bus), a retained state topic per
// rig, Home Assistant discovery, Prometheus gauges, an HTTP API and a
// pre-show doctor check.
package battery
