//! The simulated heating circuit: power, temperatures, flow and the counters that integrate them.
//! A pure function of elapsed time, so every register stays consistent with every other.

use std::f64::consts::TAU;

/// Specific heat of water as heat meters use it: 1.163 Wh per litre and kelvin.
const WH_PER_LITRE_KELVIN: f64 = 1.163;

/// Starting point and rhythm of one simulated installation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Installation {
    /// Heat energy counter at start, kWh.
    pub energy_kwh: f64,
    /// Volume counter at start, m³.
    pub volume_m3: f64,
    /// Hour counter at start.
    pub hours: u64,
    /// Mean heat power, kW.
    pub mean_power_kw: f64,
    /// Swing of the power around its mean, kW.
    pub power_swing_kw: f64,
    /// Mean forward temperature, °C.
    pub mean_t1: f64,
    /// Mean temperature difference, K.
    pub mean_dt: f64,
    /// Period of the daily-like cycle, seconds.
    pub period_s: f64,
}

/// The circuit at one moment, already rounded to what a meter would show.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Snapshot {
    /// Heat energy, kWh (unrounded; each register rounds to its own resolution).
    pub energy_kwh: f64,
    /// Volume, m³ (unrounded).
    pub volume_m3: f64,
    /// Operating hours.
    pub hours: u64,
    /// Forward temperature in hundredths of a degree.
    pub t1_centi: i64,
    /// Return temperature in hundredths of a degree.
    pub t2_centi: i64,
    /// Power in tenths of a kW.
    pub power_deci_kw: i64,
    /// Flow in l/h.
    pub flow_lh: i64,
}

impl Installation {
    /// State after `elapsed_s` seconds of simulated time.
    pub fn at(&self, elapsed_s: f64) -> Snapshot {
        let t = elapsed_s.max(0.0);
        let w = TAU / self.period_s;
        let power = self.mean_power_kw + self.power_swing_kw * (w * t).sin();
        // Closed-form integral of the power, so the counter never depends on how often it is read.
        let energy_kwh = self.energy_kwh
            + (self.mean_power_kw * t + self.power_swing_kw / w * (1.0 - (w * t).cos())) / 3600.0;
        let t1 = self.mean_t1 + 4.0 * (w * t * 0.5).sin();
        let dt = self.mean_dt + 3.0 * (w * t + 1.0).sin();
        let t1_centi = (t1 * 100.0).round() as i64;
        let t2_centi = ((t1 - dt) * 100.0).round() as i64;
        let dt_exact = (t1_centi - t2_centi) as f64 / 100.0;
        let flow_lh = (power * 1000.0 / (WH_PER_LITRE_KELVIN * dt_exact.max(1.0))).round() as i64;
        // Volume follows energy through the mean ΔT: monotonic and close to ∫flow.
        let kwh_per_m3 = WH_PER_LITRE_KELVIN * self.mean_dt;
        let volume_m3 = self.volume_m3 + (energy_kwh - self.energy_kwh) / kwh_per_m3;
        Snapshot {
            energy_kwh,
            volume_m3,
            hours: self.hours + (t / 3600.0) as u64,
            t1_centi,
            t2_centi,
            power_deci_kw: (power * 10.0).round() as i64,
            flow_lh,
        }
    }
}

impl Installation {
    /// Time-averaged forward and return temperatures (°C) over `[from_s, to_s]` of simulated
    /// time, in closed form (what a meter logs as the hour's or day's T1/T2 average; whether a
    /// real meter weights by time or by flow is not documented — time is assumed).
    pub fn mean_temperatures(&self, from_s: f64, to_s: f64) -> (f64, f64) {
        let (a, b) = (from_s.max(0.0), to_s.max(0.0));
        let w = TAU / self.period_s;
        if b - a < 1e-9 {
            let snap = self.at(b);
            return (snap.t1_centi as f64 / 100.0, snap.t2_centi as f64 / 100.0);
        }
        let span = b - a;
        // Mean of sin(k·t + c) over [a, b] = (cos(k·a + c) − cos(k·b + c)) / (k·span).
        let mean_sin = |k: f64, c: f64| ((k * a + c).cos() - (k * b + c).cos()) / (k * span);
        let t1 = self.mean_t1 + 4.0 * mean_sin(w * 0.5, 0.0);
        let dt = self.mean_dt + 3.0 * mean_sin(w, 1.0);
        (t1, t1 - dt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn house() -> Installation {
        Installation {
            energy_kwh: 55_006.0,
            volume_m3: 1875.56,
            hours: 7126,
            mean_power_kw: 4.0,
            power_swing_kw: 2.0,
            mean_t1: 65.0,
            mean_dt: 30.0,
            period_s: 6.0 * 3600.0,
        }
    }

    #[test]
    fn counters_grow_and_never_go_back() {
        let h = house();
        let mut last = h.at(0.0);
        for step in 1..2000 {
            let now = h.at(f64::from(step) * 97.0);
            assert!(now.energy_kwh >= last.energy_kwh);
            assert!(now.volume_m3 >= last.volume_m3);
            assert!(now.hours >= last.hours);
            assert!(now.t1_centi > now.t2_centi, "T1 must stay above T2");
            assert!(now.flow_lh > 0);
            last = now;
        }
    }

    #[test]
    fn mean_temperatures_match_sampling() {
        let h = house();
        let (t1, t2) = h.mean_temperatures(3600.0, 7200.0);
        let n = 3600;
        let (mut s1, mut s2) = (0.0, 0.0);
        for i in 0..n {
            let t = 3600.0 + (f64::from(i) + 0.5);
            let w = TAU / h.period_s;
            let a = h.mean_t1 + 4.0 * (w * t * 0.5).sin();
            s1 += a;
            s2 += a - (h.mean_dt + 3.0 * (w * t + 1.0).sin());
        }
        assert!((t1 - s1 / f64::from(n)).abs() < 1e-3, "{t1}");
        assert!((t2 - s2 / f64::from(n)).abs() < 1e-3, "{t2}");
    }

    #[test]
    fn energy_matches_power_times_time() {
        let h = house();
        // Over whole periods the swing cancels: energy = mean power × time.
        let day = h.at(4.0 * h.period_s);
        let expected = h.energy_kwh + h.mean_power_kw * 4.0 * h.period_s / 3600.0;
        assert!((day.energy_kwh - expected).abs() < 1e-6);
        assert_eq!(day.hours, h.hours + 24);
    }
}
