//! The KMP data-link checksum: CRC-16/XMODEM over destination, CID and data.
//! Table-driven, so unlike the "augmented" bit routine of older readers it needs no zero padding.

const XMODEM: ::crc::Crc<u16> = ::crc::Crc::<u16>::new(&::crc::CRC_16_XMODEM);

/// CRC-16/XMODEM (poly 0x1021, init 0, no reflection, no final XOR) of `data`.
///
/// Running it over content plus the big-endian CRC gives 0 for an intact frame.
pub fn crc16(data: &[u8]) -> u16 {
    XMODEM.checksum(data)
}

#[cfg(test)]
mod tests {
    use super::crc16;

    #[test]
    fn check_value() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn known_frames() {
        assert_eq!(crc16(&[0x3F, 0x01]), 0x058A);
        assert_eq!(crc16(&[0x3F, 0x02]), 0x35E9);
        // Real capture 80 3F 10 01 00 3C B2 5F 0D, not golles' non-augmented 0xFAFA.
        assert_eq!(crc16(&[0x3F, 0x10, 0x01, 0x00, 0x3C]), 0xB25F);
        assert_eq!(crc16(&[0x3F, 0x10, 0x01, 0x00, 0x3C, 0xB2, 0x5F]), 0);
    }
}
