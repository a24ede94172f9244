//! Conformance scenarios shared by the host and the firmware.
