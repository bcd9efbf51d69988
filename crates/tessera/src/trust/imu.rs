//! IMU consistency (accelerometer vibration and yaw rate against GNSS speed and heading change):
//! the hook for camera telemetry (GPMF, CAMM, BlackVue `3gf`). No source carries IMU readings
//! yet — the telemetry issue adds the `imu` table — so this detector finds nothing, and the
//! pipeline does not call it. Its test only pins that.

use super::Finding;

/// One IMU reading: time (UTC ms), acceleration (m/s², camera axes), angular rate (rad/s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImuSample {
    /// UTC ms.
    pub time_ms: i64,
    /// Acceleration x/y/z, m/s².
    pub accel: [f32; 3],
    /// Angular rate x/y/z, rad/s.
    pub gyro: [f32; 3],
}

/// Check a segment's IMU readings against its fixes: nothing yet (see the module docs).
///
/// ```
/// assert!(tessera::trust::imu::check(&[]).is_empty());
/// ```
pub fn check(_samples: &[ImuSample]) -> Vec<Finding> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rule_imu_hook_waits_for_camera_telemetry() {
        // Sources are NMEA, GPX or Parquet fixes: none carries IMU readings to check.
        assert!(super::check(&[]).is_empty());
    }
}
