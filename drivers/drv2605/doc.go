// Package drv2605 drives the Texas Instruments DRV2605 / DRV2605L haptic
// motor driver over I2C: it plays effects from the chip's licensed ROM
// library (TouchSense 2200) on an ERM or LRA motor, so a presenter's
// wearable or a desk puck can buzz the named cue patterns.
//
// Datasheet: "DRV2605L 2- to 5.2-V Haptic Driver for LRA and ERM With
// Effect Library and Smart-Loop Architecture", Texas Instruments,
// SLOS854 (https://www.ti.com/lit/ds/symlink/drv2605l.pdf). Register
// map: section 8.6 (STATUS 0x00, MODE 0x01, library 0x03, waveform
// sequencer 0x04-0x0B, GO 0x0C, feedback control 0x1A, control 3 0x1D).
// The device answers at I2C address 0x5A.
package drv2605
