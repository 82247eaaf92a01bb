//! The meter's own history: CID 0xB8 LoggerReadOut (MULTICAL 303/403/603: configuration, read
//! by record id, read by offset from the newest) and CIDs 0xA0–0xA3 (MULTICAL 601 logger modules,
//! MULTICAL 801), as typed requests and replies, both ways so a simulator can use them.
//!
//! B8 uses 32-bit record ids and sends the register formats once per reply (record k has id
//! `first_id − k`, newest first); A0–A3 use 16-bit ids carried with every record. Values are
//! [`RegisterRecord`]s (exact decimals with the meter's unit byte).

use alloc::vec::Vec;

use crate::record::{decode_value, RegisterId, RegisterRecord};
use crate::time::LogTime;
use crate::{Error, Unit};

/// CID 0xB8: LoggerReadOut.
pub const CID_LOGGER_READOUT: u8 = 0xB8;
/// CID 0xA0: GetLogTimePresent.
pub const CID_LOG_TIME_PRESENT: u8 = 0xA0;
/// CID 0xA1: GetLogLastPresent.
pub const CID_LOG_LAST_PRESENT: u8 = 0xA1;
/// CID 0xA2: GetLogIDPresent.
pub const CID_LOG_ID_PRESENT: u8 = 0xA2;
/// CID 0xA3: GetLogTimePast.
pub const CID_LOG_TIME_PAST: u8 = 0xA3;

/// B8 sub-command 05: logger configuration.
const SUB_CONFIG: u8 = 0x05;
/// B8 sub-command 06: records from a log id toward the past.
const SUB_BY_ID: u8 = 0x06;
/// B8 sub-command 07: records from an offset before the newest toward the past.
const SUB_BY_OFFSET: u8 = 0x07;

/// Most registers one A0–A3 request may name.
pub const MAX_LOG_REGISTERS: usize = 8;

/// The logger types of B8 (numbers from the 3-series; electricity meters use others).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum LoggerType {
    /// 0: configuration changes.
    Config,
    /// 1: info-code events.
    Info,
    /// 2: yearly target-date records.
    Yearly,
    /// 3: monthly target-date records.
    Monthly,
    /// 4: daily records.
    Daily,
    /// 5: hourly records.
    Hourly,
    /// 6: first minute logger.
    Minute1,
    /// 7: second minute logger.
    Minute2,
    /// 8: software-download successes.
    SoftwareDownload,
    /// 9: software-download audit.
    SoftwareAudit,
}

impl LoggerType {
    /// Every type, in code order.
    pub const ALL: [LoggerType; 10] = [
        LoggerType::Config,
        LoggerType::Info,
        LoggerType::Yearly,
        LoggerType::Monthly,
        LoggerType::Daily,
        LoggerType::Hourly,
        LoggerType::Minute1,
        LoggerType::Minute2,
        LoggerType::SoftwareDownload,
        LoggerType::SoftwareAudit,
    ];

    /// The byte on the wire.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The type a byte names; [`Error::UnknownLogger`] for others.
    pub fn from_code(code: u8) -> Result<LoggerType, Error> {
        LoggerType::ALL
            .get(usize::from(code))
            .copied()
            .ok_or(Error::UnknownLogger(code))
    }

    /// Short name: `year`, `month`, `day`, `hour`, `minute1` …
    pub const fn name(self) -> &'static str {
        match self {
            LoggerType::Config => "config",
            LoggerType::Info => "info",
            LoggerType::Yearly => "year",
            LoggerType::Monthly => "month",
            LoggerType::Daily => "day",
            LoggerType::Hourly => "hour",
            LoggerType::Minute1 => "minute1",
            LoggerType::Minute2 => "minute2",
            LoggerType::SoftwareDownload => "sw-download",
            LoggerType::SoftwareAudit => "sw-audit",
        }
    }
}

/// A B8 request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum LoggerRequest {
    /// Sub 05: depth, target dates and the logged register ids of one logger.
    Config {
        /// Which logger.
        logger: LoggerType,
    },
    /// Sub 06: `count` records starting at `log_id`, toward the past.
    ById {
        /// Which logger.
        logger: LoggerType,
        /// Id of the newest record wanted.
        log_id: u32,
        /// Records wanted (the meter may return fewer).
        count: u16,
        /// Registers per record, 1..=255.
        registers: Vec<RegisterId>,
    },
    /// Sub 07: `count` records starting `offset` records before the newest, toward the past
    /// (0xFFFF: the oldest record).
    ByOffset {
        /// Which logger.
        logger: LoggerType,
        /// Records to skip from the newest.
        offset: u16,
        /// Records wanted.
        count: u16,
        /// Registers per record, 1..=255.
        registers: Vec<RegisterId>,
    },
}

fn push_ids(ids: &[RegisterId], max: usize, out: &mut Vec<u8>) -> Result<(), Error> {
    match ids.len() {
        0 => return Err(Error::NoRegisters),
        n if n > max => return Err(Error::TooManyRegisters(n)),
        _ => {}
    }
    out.push(u8::try_from(ids.len()).map_err(|_| Error::TooManyRegisters(ids.len()))?);
    for id in ids {
        out.extend_from_slice(&id.0.to_be_bytes());
    }
    Ok(())
}

/// A cursor over command data; every read is checked.
struct Cursor<'a> {
    cid: u8,
    rest: &'a [u8],
    len: usize,
}

impl<'a> Cursor<'a> {
    fn new(cid: u8, data: &'a [u8]) -> Self {
        Cursor {
            cid,
            rest: data,
            len: data.len(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or(Error::UnexpectedLength {
                cid: self.cid,
                len: self.len,
            })?;
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }

    fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn ids(&mut self, n: usize) -> Result<Vec<RegisterId>, Error> {
        (0..n).map(|_| self.u16().map(RegisterId)).collect()
    }

    fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Errors if bytes are left.
    fn finish(&self) -> Result<(), Error> {
        match self.rest.len() {
            0 => Ok(()),
            count => Err(Error::TrailingBytes {
                cid: self.cid,
                count,
            }),
        }
    }
}

impl LoggerRequest {
    /// The logger asked.
    pub fn logger(&self) -> LoggerType {
        match self {
            LoggerRequest::Config { logger }
            | LoggerRequest::ById { logger, .. }
            | LoggerRequest::ByOffset { logger, .. } => *logger,
        }
    }

    /// The command data (after the CID).
    pub fn to_data(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        match self {
            LoggerRequest::Config { logger } => {
                out.extend_from_slice(&[SUB_CONFIG, logger.code()]);
            }
            LoggerRequest::ById {
                logger,
                log_id,
                count,
                registers,
            } => {
                out.extend_from_slice(&[SUB_BY_ID, logger.code()]);
                out.extend_from_slice(&log_id.to_be_bytes());
                out.extend_from_slice(&count.to_be_bytes());
                push_ids(registers, usize::from(u8::MAX), &mut out)?;
            }
            LoggerRequest::ByOffset {
                logger,
                offset,
                count,
                registers,
            } => {
                out.extend_from_slice(&[SUB_BY_OFFSET, logger.code()]);
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&count.to_be_bytes());
                push_ids(registers, usize::from(u8::MAX), &mut out)?;
            }
        }
        Ok(out)
    }

    /// Decodes the command data (after the CID).
    pub fn from_data(data: &[u8]) -> Result<LoggerRequest, Error> {
        let mut c = Cursor::new(CID_LOGGER_READOUT, data);
        let sub = c.u8()?;
        if !matches!(sub, SUB_CONFIG | SUB_BY_ID | SUB_BY_OFFSET) {
            return Err(Error::UnknownSubCommand {
                cid: CID_LOGGER_READOUT,
                sub,
            });
        }
        let logger = LoggerType::from_code(c.u8()?)?;
        let request = match sub {
            SUB_CONFIG => LoggerRequest::Config { logger },
            _ => {
                let position = if sub == SUB_BY_ID {
                    c.u32()?
                } else {
                    u32::from(c.u16()?)
                };
                let count = c.u16()?;
                let n = usize::from(c.u8()?);
                if n == 0 {
                    return Err(Error::NoRegisters);
                }
                let registers = c.ids(n)?;
                if sub == SUB_BY_ID {
                    LoggerRequest::ById {
                        logger,
                        log_id: position,
                        count,
                        registers,
                    }
                } else {
                    LoggerRequest::ByOffset {
                        logger,
                        offset: u16::try_from(position).unwrap_or(u16::MAX),
                        count,
                        registers,
                    }
                }
            }
        };
        c.finish()?;
        Ok(request)
    }
}

/// The B8 info word of a records reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LoggerInfo(pub u16);

impl LoggerInfo {
    /// Bit 0: the logger has no records (the reply still carries one dummy record).
    pub const EMPTY: u16 = 1 << 0;
    /// Bit 1: the requested id or time is out of range.
    pub const OUT_OF_RANGE: u16 = 1 << 1;
    /// Bit 3: a register is not logged (semantics unverified).
    pub const UNSUPPORTED_REGISTER: u16 = 1 << 3;
    /// Bit 4: entries truncated (semantics unverified; check `count` instead).
    pub const TRUNCATED: u16 = 1 << 4;
    /// Bit 6: the oldest record of the logger is in this reply (end of log, walking back).
    pub const OLDEST_INCLUDED: u16 = 1 << 6;
    /// Bit 7: the newest record of the logger is in this reply.
    pub const NEWEST_INCLUDED: u16 = 1 << 7;

    fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }

    /// The logger is empty: drop the records of the reply.
    pub fn is_empty(self) -> bool {
        self.has(Self::EMPTY)
    }

    /// The requested id or time is outside the log.
    pub fn out_of_range(self) -> bool {
        self.has(Self::OUT_OF_RANGE)
    }

    /// The oldest record is in the reply: walking toward the past, the end of the log.
    pub fn oldest_included(self) -> bool {
        self.has(Self::OLDEST_INCLUDED)
    }

    /// The newest record is in the reply.
    pub fn newest_included(self) -> bool {
        self.has(Self::NEWEST_INCLUDED)
    }
}

/// The format of one register column, sent once per reply (B8) or with the first record (A0–A3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ColumnFormat {
    /// Register id.
    pub id: RegisterId,
    /// Unit code.
    pub unit: Unit,
    /// Value bytes (1..=8) of every record in this column.
    pub len: u8,
    /// Sign and exponent byte shared by every record in this column.
    pub si_ex: u8,
}

impl ColumnFormat {
    fn parse(c: &mut Cursor<'_>) -> Result<ColumnFormat, Error> {
        let id = RegisterId(c.u16()?);
        let unit = Unit(c.u8()?);
        let len = c.u8()?;
        if !(1..=crate::MAX_VALUE_LEN).contains(&len) {
            return Err(Error::ValueLength {
                register: id.0,
                len,
            });
        }
        let si_ex = c.u8()?;
        Ok(ColumnFormat {
            id,
            unit,
            len,
            si_ex,
        })
    }

    fn push(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0.to_be_bytes());
        out.extend_from_slice(&[self.unit.0, self.len, self.si_ex]);
    }

    fn value(&self, c: &mut Cursor<'_>) -> Result<RegisterRecord, Error> {
        let mantissa = c.take(usize::from(self.len))?;
        Ok(RegisterRecord {
            id: self.id,
            unit: self.unit,
            value: decode_value(self.id.0, self.si_ex, mantissa)?,
        })
    }

    /// The column format that carries `value` at its own exponent in `len` bytes.
    pub fn for_value(
        id: RegisterId,
        unit: Unit,
        len: u8,
        value: &kamstrup_decimal::Decimal,
    ) -> Result<ColumnFormat, Error> {
        let mut out = Vec::new();
        crate::record::encode_value(id.0, value, &mut out)?;
        let si_ex = out.get(1).copied().unwrap_or_default();
        Ok(ColumnFormat {
            id,
            unit,
            len,
            si_ex,
        })
    }

    /// Appends `record`'s value in this column's format: same register and unit, the value
    /// exactly representable at the column's exponent and sign, in `len` bytes.
    fn push_value(&self, record: &RegisterRecord, out: &mut Vec<u8>) -> Result<(), Error> {
        let misfit = Error::ColumnMismatch {
            register: self.id.0,
        };
        if record.id != self.id || record.unit != self.unit {
            return Err(misfit);
        }
        let mut exponent = i16::from(self.si_ex & 0x3F);
        if self.si_ex & 0x40 != 0 {
            exponent = -exponent;
        }
        let scaled = record.value.rescale(exponent).ok_or(misfit.clone())?;
        let negative = self.si_ex & 0x80 != 0;
        let mantissa = scaled.mantissa();
        if mantissa != 0 && (mantissa < 0) != negative {
            return Err(misfit);
        }
        let magnitude = u64::try_from(mantissa.unsigned_abs()).map_err(|_| misfit.clone())?;
        let bytes = magnitude.to_be_bytes();
        let len = usize::from(self.len);
        let (high, low) = bytes.split_at(bytes.len().saturating_sub(len));
        if high.iter().any(|&b| b != 0) || low.len() != len {
            return Err(misfit);
        }
        out.extend_from_slice(low);
        Ok(())
    }
}

/// One logged record: its id and one value per register column.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LogRecord {
    /// Record id (B8: 32 bit; A0–A3: 16 bit).
    pub id: u32,
    /// Values in column order.
    pub values: Vec<RegisterRecord>,
}

impl LogRecord {
    /// The value of register `id` in this record.
    pub fn get(&self, id: u16) -> Option<&RegisterRecord> {
        self.values.iter().find(|v| v.id.0 == id)
    }
}

/// B8 sub 05 reply: how a logger is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LoggerConfig {
    /// Which logger.
    pub logger: LoggerType,
    /// Format byte and value of target date 1 (yearly: `01 01` = 1 January).
    pub date1: (u8, [u8; 2]),
    /// Format byte and value of target date 2 (`00 00` = disabled).
    pub date2: (u8, [u8; 2]),
    /// Format byte and value of the third field ("max interval records": meaning likely).
    pub max_interval_records: (u8, u8),
    /// Format byte and value of the fourth field ("interval": meaning likely).
    pub interval: (u8, u8),
    /// Records the logger keeps.
    pub depth: u16,
    /// The registers each record holds.
    pub registers: Vec<RegisterId>,
}

/// B8 sub 06/07 reply: records newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LoggerRecords {
    /// `true` for sub 06 (by id), `false` for sub 07 (by offset).
    pub by_id: bool,
    /// Which logger.
    pub logger: LoggerType,
    /// Id of the first (newest) record in the reply.
    pub first_id: u32,
    /// Id of the newest record in the whole logger.
    pub newest_id: u32,
    /// Flags.
    pub info: LoggerInfo,
    /// Registers per record (nregs; kept when a reply carries no records).
    pub registers_returned: u8,
    /// Register formats (one per register returned; empty without records).
    pub columns: Vec<ColumnFormat>,
    /// Records as sent, newest first; record k has id `first_id − k`. When
    /// [`LoggerInfo::is_empty`] they are a placeholder: use [`LoggerRecords::valid_records`].
    pub records: Vec<LogRecord>,
}

impl LoggerRecords {
    /// The records that are real: none when the logger reports itself empty.
    pub fn valid_records(&self) -> &[LogRecord] {
        if self.info.is_empty() {
            &[]
        } else {
            &self.records
        }
    }

    /// Id of the oldest record in the reply (the next page starts one below it).
    pub fn last_id(&self) -> Option<u32> {
        self.valid_records().last().map(|r| r.id)
    }

    /// Builds a reply from records, choosing each column's format from the first record's
    /// values (`len` per register from `lens`, else 4 bytes). Meter side.
    pub fn build(
        by_id: bool,
        logger: LoggerType,
        newest_id: u32,
        info: LoggerInfo,
        records: Vec<LogRecord>,
        lens: impl Fn(RegisterId) -> u8,
    ) -> Result<LoggerRecords, Error> {
        let columns = match records.first() {
            Some(first) => first
                .values
                .iter()
                .map(|v| ColumnFormat::for_value(v.id, v.unit, lens(v.id), &v.value))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        Ok(LoggerRecords {
            by_id,
            logger,
            first_id: records.first().map_or(0, |r| r.id),
            newest_id,
            info,
            registers_returned: u8::try_from(columns.len())
                .map_err(|_| Error::TooManyRegisters(columns.len()))?,
            columns,
            records,
        })
    }
}

/// A B8 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum LoggerReply {
    /// Sub 05.
    Config(LoggerConfig),
    /// Sub 06 or 07.
    Records(LoggerRecords),
}

impl LoggerReply {
    /// Decodes the command data (after the CID).
    pub fn from_data(data: &[u8]) -> Result<LoggerReply, Error> {
        let cid = CID_LOGGER_READOUT;
        let mut c = Cursor::new(cid, data);
        let sub = c.u8()?;
        if !matches!(sub, SUB_CONFIG | SUB_BY_ID | SUB_BY_OFFSET) {
            return Err(Error::UnknownSubCommand { cid, sub });
        }
        let logger = LoggerType::from_code(c.u8()?)?;
        if sub == SUB_CONFIG {
            let date1 = (c.u8()?, c.array::<2>()?);
            let date2 = (c.u8()?, c.array::<2>()?);
            let max_interval_records = (c.u8()?, c.u8()?);
            let interval = (c.u8()?, c.u8()?);
            let depth = c.u16()?;
            let n = usize::from(c.u8()?);
            let registers = c.ids(n)?;
            c.finish()?;
            return Ok(LoggerReply::Config(LoggerConfig {
                logger,
                date1,
                date2,
                max_interval_records,
                interval,
                depth,
                registers,
            }));
        }
        let count = c.u16()?;
        let registers_returned = c.u8()?;
        let nregs = usize::from(registers_returned);
        let first_id = c.u32()?;
        let newest_id = c.u32()?;
        let info = LoggerInfo(c.u16()?);
        let mut columns = Vec::new();
        let mut records = Vec::new();
        if count > 0 {
            let mut first = Vec::with_capacity(nregs);
            for _ in 0..nregs {
                let col = ColumnFormat::parse(&mut c)?;
                first.push(col.value(&mut c)?);
                columns.push(col);
            }
            records.push(LogRecord {
                id: first_id,
                values: first,
            });
            let stride: usize = columns.iter().map(|col| usize::from(col.len)).sum();
            // Refuse before allocating: the count must fit the bytes that are there.
            let more = usize::from(count) - 1;
            if stride.saturating_mul(more) > c.remaining() {
                return Err(Error::Truncated {
                    what: "logger records",
                    len: data.len(),
                });
            }
            for k in 1..=more {
                let id = u32::try_from(k)
                    .ok()
                    .and_then(|k| first_id.checked_sub(k))
                    .ok_or(Error::Malformed {
                        cid,
                        what: "record ids run below 0",
                    })?;
                let values = columns
                    .iter()
                    .map(|col| col.value(&mut c))
                    .collect::<Result<Vec<_>, _>>()?;
                records.push(LogRecord { id, values });
            }
        }
        c.finish()?;
        Ok(LoggerReply::Records(LoggerRecords {
            by_id: sub == SUB_BY_ID,
            logger,
            first_id,
            newest_id,
            info,
            registers_returned,
            columns,
            records,
        }))
    }

    /// The command data (after the CID). Errors when records do not fit the columns, ids do
    /// not count down from `first_id`, or a count does not fit its field.
    pub fn to_data(&self) -> Result<Vec<u8>, Error> {
        let cid = CID_LOGGER_READOUT;
        let mut out = Vec::new();
        match self {
            LoggerReply::Config(cfg) => {
                out.extend_from_slice(&[SUB_CONFIG, cfg.logger.code(), cfg.date1.0]);
                out.extend_from_slice(&cfg.date1.1);
                out.push(cfg.date2.0);
                out.extend_from_slice(&cfg.date2.1);
                out.extend_from_slice(&[
                    cfg.max_interval_records.0,
                    cfg.max_interval_records.1,
                    cfg.interval.0,
                    cfg.interval.1,
                ]);
                out.extend_from_slice(&cfg.depth.to_be_bytes());
                let n = u8::try_from(cfg.registers.len())
                    .map_err(|_| Error::TooManyRegisters(cfg.registers.len()))?;
                out.push(n);
                for id in &cfg.registers {
                    out.extend_from_slice(&id.0.to_be_bytes());
                }
            }
            LoggerReply::Records(r) => {
                let sub = if r.by_id { SUB_BY_ID } else { SUB_BY_OFFSET };
                out.extend_from_slice(&[sub, r.logger.code()]);
                let count = u16::try_from(r.records.len()).map_err(|_| Error::Malformed {
                    cid,
                    what: "more than 65535 records",
                })?;
                out.extend_from_slice(&count.to_be_bytes());
                if !r.records.is_empty() && r.columns.len() != usize::from(r.registers_returned) {
                    return Err(Error::Malformed {
                        cid,
                        what: "columns do not match nregs",
                    });
                }
                out.push(r.registers_returned);
                out.extend_from_slice(&r.first_id.to_be_bytes());
                out.extend_from_slice(&r.newest_id.to_be_bytes());
                out.extend_from_slice(&r.info.0.to_be_bytes());
                for (k, record) in r.records.iter().enumerate() {
                    let expected = u32::try_from(k)
                        .ok()
                        .and_then(|k| r.first_id.checked_sub(k));
                    if expected != Some(record.id) {
                        return Err(Error::Malformed {
                            cid,
                            what: "record ids must count down from first_id",
                        });
                    }
                    if record.values.len() != r.columns.len() {
                        return Err(Error::Malformed {
                            cid,
                            what: "a record's values do not match the columns",
                        });
                    }
                    for (col, value) in r.columns.iter().zip(&record.values) {
                        if k == 0 {
                            col.push(&mut out);
                        }
                        col.push_value(value, &mut out)?;
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Which of the four A0–A3 commands, with its own arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum LogSelector {
    /// A0: the oldest record with time ≥ `time`, then ascending.
    TimePresent {
        /// Search time.
        time: LogTime,
    },
    /// A1: records after the meter's "last read" mark, ascending.
    LastPresent,
    /// A2: from `record_id` (or the next existing), ascending.
    IdPresent {
        /// First record id wanted.
        record_id: u16,
    },
    /// A3: the newest record with time ≤ `time`, minus `offset`, descending.
    TimePast {
        /// Search time.
        time: LogTime,
        /// Records to step back from the hit.
        offset: u16,
    },
}

impl LogSelector {
    /// The command id.
    pub const fn cid(&self) -> u8 {
        match self {
            LogSelector::TimePresent { .. } => CID_LOG_TIME_PRESENT,
            LogSelector::LastPresent => CID_LOG_LAST_PRESENT,
            LogSelector::IdPresent { .. } => CID_LOG_ID_PRESENT,
            LogSelector::TimePast { .. } => CID_LOG_TIME_PAST,
        }
    }
}

/// An A0–A3 request (MULTICAL 601 logger modules at 0x7F/0xBF, MULTICAL 801 at 0x7F).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LogRequest {
    /// Log id (LID; 1 = the interval logger in the documented example).
    pub log: u8,
    /// Registers, 1..=8.
    pub registers: Vec<RegisterId>,
    /// Records wanted (NRcs).
    pub records: u8,
    /// Largest reply application length the meter may send (MaxL; 128 for a 601 module).
    pub max_len: u8,
    /// Which command and its search key.
    pub selector: LogSelector,
}

impl LogRequest {
    /// The command data (after the CID, which is `self.selector.cid()`).
    pub fn to_data(&self) -> Result<Vec<u8>, Error> {
        let mut out = alloc::vec![self.log];
        push_ids(&self.registers, MAX_LOG_REGISTERS, &mut out)?;
        out.extend_from_slice(&[self.records, self.max_len]);
        match &self.selector {
            LogSelector::TimePresent { time } => out.extend_from_slice(&time.to_bytes()?),
            LogSelector::LastPresent => {}
            LogSelector::IdPresent { record_id } => out.extend_from_slice(&record_id.to_be_bytes()),
            LogSelector::TimePast { time, offset } => {
                out.extend_from_slice(&time.to_bytes()?);
                out.extend_from_slice(&offset.to_be_bytes());
            }
        }
        Ok(out)
    }

    /// Decodes the command data of CID `cid` (0xA0..=0xA3).
    pub fn from_data(cid: u8, data: &[u8]) -> Result<LogRequest, Error> {
        let mut c = Cursor::new(cid, data);
        let log = c.u8()?;
        let n = usize::from(c.u8()?);
        match n {
            0 => return Err(Error::NoRegisters),
            n if n > MAX_LOG_REGISTERS => return Err(Error::TooManyRegisters(n)),
            _ => {}
        }
        let registers = c.ids(n)?;
        let records = c.u8()?;
        let max_len = c.u8()?;
        let selector = match cid {
            CID_LOG_TIME_PRESENT => LogSelector::TimePresent {
                time: LogTime::from_bytes(c.array()?)?,
            },
            CID_LOG_LAST_PRESENT => LogSelector::LastPresent,
            CID_LOG_ID_PRESENT => LogSelector::IdPresent {
                record_id: c.u16()?,
            },
            CID_LOG_TIME_PAST => LogSelector::TimePast {
                time: LogTime::from_bytes(c.array()?)?,
                offset: c.u16()?,
            },
            other => return Err(Error::UnknownCid(other)),
        };
        c.finish()?;
        Ok(LogRequest {
            log,
            registers,
            records,
            max_len,
            selector,
        })
    }
}

/// The INFO byte of an A0–A3 reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LogInfo(pub u8);

impl LogInfo {
    /// Bit 0: the log is empty.
    pub const EMPTY: u8 = 1 << 0;
    /// Bit 2: the requested id or time is out of range.
    pub const OUT_OF_RANGE: u8 = 1 << 2;
    /// Bit 3: MaxL reached, records left out.
    pub const MAX_LEN_REACHED: u8 = 1 << 3;
    /// Bit 4: end of log reached, records left out.
    pub const END_OF_LOG: u8 = 1 << 4;

    /// The log is empty.
    pub fn is_empty(self) -> bool {
        self.0 & Self::EMPTY != 0
    }
    /// The requested id or time is outside the log.
    pub fn out_of_range(self) -> bool {
        self.0 & Self::OUT_OF_RANGE != 0
    }
    /// The reply was cut at MaxL: ask again from the next record.
    pub fn max_len_reached(self) -> bool {
        self.0 & Self::MAX_LEN_REACHED != 0
    }
    /// The end of the log was reached.
    pub fn end_of_log(self) -> bool {
        self.0 & Self::END_OF_LOG != 0
    }
}

/// An A0–A3 reply: `CID LID NRtR | RecID (id unit NoB SiEx value)×NRtR | RecID values… |
/// LRORecID NewestRecID INFO`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LogReply {
    /// The command answered (0xA0..=0xA3).
    pub cid: u8,
    /// Log id.
    pub log: u8,
    /// Registers returned (NRtR; fewer than asked when one is not in the log).
    pub registers_returned: u8,
    /// Register formats, from the first record (empty without records).
    pub columns: Vec<ColumnFormat>,
    /// Records in the order sent (A0–A2 ascending, A3 descending), each with its id.
    pub records: Vec<LogRecord>,
    /// Id of the last record in this reply (LRORecID); `None` in a body shortened to INFO.
    pub last_record_id: Option<u16>,
    /// Id of the newest record in the log; `None` in a body shortened to INFO.
    pub newest_record_id: Option<u16>,
    /// Flags.
    pub info: LogInfo,
}

impl LogReply {
    /// Decodes the command data of CID `cid`.
    pub fn from_data(cid: u8, data: &[u8]) -> Result<LogReply, Error> {
        if !(CID_LOG_TIME_PRESENT..=CID_LOG_TIME_PAST).contains(&cid) {
            return Err(Error::UnknownCid(cid));
        }
        let mut c = Cursor::new(cid, data);
        let log = c.u8()?;
        let registers_returned = c.u8()?;
        let n = usize::from(registers_returned);
        // INFO is always last; a reply with an INFO bit may be cut down to just that byte.
        if c.remaining() == 1 {
            return Ok(LogReply {
                cid,
                log,
                registers_returned,
                columns: Vec::new(),
                records: Vec::new(),
                last_record_id: None,
                newest_record_id: None,
                info: LogInfo(c.u8()?),
            });
        }
        let body_len = c
            .remaining()
            .checked_sub(5)
            .ok_or(Error::UnexpectedLength {
                cid,
                len: data.len(),
            })?;
        let mut body = Cursor::new(cid, c.take(body_len)?);
        let last_record_id = Some(c.u16()?);
        let newest_record_id = Some(c.u16()?);
        let info = LogInfo(c.u8()?);
        let mut columns = Vec::with_capacity(n);
        let mut records = Vec::new();
        if body.remaining() > 0 {
            let id = u32::from(body.u16()?);
            let mut values = Vec::with_capacity(n);
            for _ in 0..n {
                let col = ColumnFormat::parse(&mut body)?;
                values.push(col.value(&mut body)?);
                columns.push(col);
            }
            records.push(LogRecord { id, values });
            while body.remaining() > 0 {
                let id = u32::from(body.u16()?);
                let values = columns
                    .iter()
                    .map(|col| col.value(&mut body))
                    .collect::<Result<Vec<_>, _>>()?;
                records.push(LogRecord { id, values });
            }
        }
        Ok(LogReply {
            cid,
            log,
            registers_returned,
            columns,
            records,
            last_record_id,
            newest_record_id,
            info,
        })
    }

    /// The command data (after the CID).
    pub fn to_data(&self) -> Result<Vec<u8>, Error> {
        let cid = self.cid;
        if !(CID_LOG_TIME_PRESENT..=CID_LOG_TIME_PAST).contains(&cid) {
            return Err(Error::UnknownCid(cid));
        }
        let mut out = alloc::vec![self.log, self.registers_returned];
        match (self.last_record_id, self.newest_record_id) {
            (None, None) if self.records.is_empty() => {
                out.push(self.info.0);
                return Ok(out);
            }
            (Some(_), Some(_)) => {}
            _ => {
                return Err(Error::Malformed {
                    cid,
                    what: "record ids of the trailer missing",
                })
            }
        }
        if !self.records.is_empty() && self.columns.len() != usize::from(self.registers_returned) {
            return Err(Error::Malformed {
                cid,
                what: "columns do not match NRtR",
            });
        }
        for (k, record) in self.records.iter().enumerate() {
            let id = u16::try_from(record.id).map_err(|_| Error::Malformed {
                cid,
                what: "record id beyond 16 bits",
            })?;
            if record.values.len() != self.columns.len() {
                return Err(Error::Malformed {
                    cid,
                    what: "a record's values do not match the columns",
                });
            }
            out.extend_from_slice(&id.to_be_bytes());
            for (col, value) in self.columns.iter().zip(&record.values) {
                if k == 0 {
                    col.push(&mut out);
                }
                col.push_value(value, &mut out)?;
            }
        }
        out.extend_from_slice(&self.last_record_id.unwrap_or_default().to_be_bytes());
        out.extend_from_slice(&self.newest_record_id.unwrap_or_default().to_be_bytes());
        out.push(self.info.0);
        Ok(out)
    }
}

/// The application length (CID included) of a B8 records reply, before stuffing:
/// 16 + Σ(5 + len) for record 0 + Σ len per further record.
pub fn logger_reply_len(lens: &[u8], records: usize) -> usize {
    if records == 0 {
        return 16;
    }
    let row: usize = lens.iter().map(|&l| usize::from(l)).sum();
    16 + 5 * lens.len() + row * records
}
