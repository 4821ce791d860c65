// Package pn532 drives an NXP PN532 NFC controller as a reader.Reader, over
// SPI, I2C or HSU (UART), for phones used as car keys.
//
// # Datasheet
//
// NXP PN532 User Manual, UM0701-02 (Rev. 02, 2007), from nxp.com; also the
// PN532 short form data sheet for the electrical side.
//
// # Frames
//
// Every exchange is a command frame from the host, an ACK frame from the
// chip, then a response frame:
//
//	normal    00 00 FF LEN LCS TFI CMD data... DCS 00
//	extended  00 00 FF FF FF LENM LENL LCS TFI CMD data... DCS 00
//	ACK       00 00 FF 00 FF 00
//	NACK      00 00 FF FF 00 00
//	error     00 00 FF 01 FF 7F 81 00
//
// TFI is D4 from the host and D5 from the chip, whose response code is the
// command code plus one. LEN counts TFI, CMD and data; LEN+LCS and
// TFI+CMD+data+DCS are 0 modulo 256. Data longer than 255 bytes needs an
// extended frame. The host sends an ACK to abort a command, and a NACK to
// have the chip send its last response again.
//
// # Buses
//
//   - SPI, mode 0, LSB first: each transfer starts with 01 (write a frame),
//     02 (read the status, bit 0 = ready) or 03 (read a frame). Controllers
//     that only shift MSB first need Options.BitReverse.
//   - I2C at address 0x24: every read starts with a ready byte (bit 0).
//   - HSU at 115200 8N1: frames flow as a byte stream; a wake-up preamble
//     (55 55 00 00 ...) goes before the first command after power-up, reset
//     or PowerDown.
//
// On SPI and I2C an optional IRQ line (low = ready) replaces the status
// reads. As a periph transfer has a fixed length, the driver reads the
// header of a frame, sends a NACK and reads the whole frame again.
//
// # Behaviour
//
// New* does not talk to the chip. WaitCard initialises it (SAMConfiguration
// normal mode, GetFirmwareVersion, RFConfiguration of the activation retries
// and timings), probes it with GetFirmwareVersion every poll cycle, sends the
// configured ECP frame with InCommunicateThru, and polls with
// InListPassiveTarget (one 106 kbps type A target). Targets are never
// filtered by ATQA or SAK. On failures the reader reports itself unhealthy,
// resets the chip through RSTPDN when wired and initialises it again with
// backoff. APDUs go through InDataExchange with chaining both ways. APDU data
// is never logged.
package pn532
