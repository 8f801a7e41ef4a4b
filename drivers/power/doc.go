// Package power estimates the state of a battery pack from what a source
// can measure (bus voltage, current, power, or a charge the device reports
// itself): state of charge from per-chemistry resting-voltage curves with
// load correction, or energy counting when power is known; an EWMA of
// power; time to empty; and tiered alerts with hysteresis.
//
// Charge is expressed as state of energy (the share of the pack's usable
// watt-hours left), so that time to empty is remaining energy over power.
package power
