// Package ina226 drives the Texas Instruments INA226, a 16-bit I²C
// current, bus-voltage and power monitor with a 0-36 V common-mode range:
// the monitor to use for battery packs above the INA219's 26 V limit
// (26 V V-mount camera batteries reach 29.4 V when full).
//
// Datasheet: "INA226 High-Side or Low-Side Measurement, Bi-Directional
// Current and Power Monitor with I²C Compatible Interface", TI SBOS547
// (https://www.ti.com/lit/ds/symlink/ina226.pdf). Register map in section
// 7.6; calibration in section 7.5 (equations 1-4).
//
// The driver checks the manufacturer id (0x5449, "TI") and die id (0x226)
// at start, so a wrong address or a different chip on the bus is refused
// instead of being read as nonsense.
package ina226
