//! `[emission]`: the epoch pool from a schedule, so a run needs no `--pool`. Integer arithmetic
//! only: the same epoch always gets the same pool.
//!
//! | rule | pool of epoch `start + n` |
//! | --- | --- |
//! | `constant` | `pool` |
//! | `halving` | `pool >> (n / halving_epochs)` |
//! | `exponential` | `pool`, then `floor(previous × decay)` each epoch (decay in ppm) |
//! | `table` | the `pool` of the last row whose `from_epoch` ≤ the epoch |

use crate::epoch::Epoch;
use crate::places::policy::parse_amount;
use serde::{Deserialize, Serialize};

/// A schedule rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The same pool every epoch (default).
    #[default]
    Constant,
    /// Halves every `halving_epochs`.
    Halving,
    /// Multiplied by `decay` every epoch.
    Exponential,
    /// An explicit table.
    Table,
}

impl Rule {
    /// The rule's name as recorded in the manifest (`pool_rule`).
    ///
    /// ```
    /// assert_eq!(tessera::rewards::emission::Rule::Halving.as_str(), "halving");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Rule::Constant => "constant",
            Rule::Halving => "halving",
            Rule::Exponential => "exponential",
            Rule::Table => "table",
        }
    }
}

/// One row of a `table` schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// First epoch of this pool.
    pub from_epoch: String,
    /// Pool, base units (decimal string).
    pub pool: String,
}

/// `[emission]`.
///
/// ```
/// let p = tessera::policy::Policy::from_toml_str(
///     "[emission]\nrule = \"halving\"\npool = \"1000\"\nstart_epoch = \"2026-W01\"\nhalving_epochs = 10\n").unwrap();
/// let em = p.emission.unwrap();
/// assert_eq!(em.pool_for("2026-W10".parse().unwrap()), Ok(1000));
/// assert_eq!(em.pool_for("2026-W11".parse().unwrap()), Ok(500));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmissionPolicy {
    /// `constant` (default), `halving`, `exponential` or `table`.
    pub rule: Rule,
    /// Pool of the first epoch, base units (decimal string; unused by `table`).
    pub pool: String,
    /// First epoch of the schedule (ISO week); earlier epochs have no pool and are refused.
    pub start_epoch: String,
    /// `halving`: epochs between halvings (default 52).
    pub halving_epochs: u32,
    /// `exponential`: share of the pool kept from one epoch to the next, in (0, 1] (default 0.99).
    pub decay: f64,
    /// `table`: rows in epoch order.
    pub table: Vec<Step>,
}

impl Default for EmissionPolicy {
    fn default() -> Self {
        EmissionPolicy {
            rule: Rule::Constant,
            pool: "0".into(),
            start_epoch: String::new(),
            halving_epochs: 52,
            decay: 0.99,
            table: Vec::new(),
        }
    }
}

impl EmissionPolicy {
    /// Check every key.
    ///
    /// # Errors
    /// `(field, message)` naming the first bad key.
    ///
    /// ```
    /// let e = tessera::policy::Policy::from_toml_str("[emission]\npool = \"1.5\"\nstart_epoch = \"2026-W01\"\n");
    /// assert!(e.unwrap_err().to_string().contains("emission.pool"));
    /// ```
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let start: Epoch = self
            .start_epoch
            .parse()
            .map_err(|e| ("emission.start_epoch", format!("{e}")))?;
        if self.rule != Rule::Table {
            parse_amount(&self.pool).map_err(|m| ("emission.pool", m))?;
        }
        match self.rule {
            Rule::Halving if self.halving_epochs == 0 => {
                return Err(("emission.halving_epochs", "must be at least 1".into()))
            }
            Rule::Exponential => {
                crate::fixed::to_ppm(self.decay, 1.0)
                    .filter(|d| *d > 0)
                    .ok_or(("emission.decay", "must be in (0, 1]".to_string()))?;
            }
            Rule::Table => {
                if self.table.is_empty() {
                    return Err(("emission.table", "needs at least one row".into()));
                }
                let mut prev = start.index() - 1;
                for s in &self.table {
                    let e: Epoch = s.from_epoch.parse().map_err(|e| ("emission.table", format!("{e}")))?;
                    if e.index() <= prev {
                        return Err((
                            "emission.table",
                            format!("{}: rows must be in epoch order, from start_epoch", s.from_epoch),
                        ));
                    }
                    prev = e.index();
                    parse_amount(&s.pool).map_err(|m| ("emission.table", m))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The pool of `epoch`.
    ///
    /// # Errors
    /// A message when the epoch is before `start_epoch` (or before the table's first row) or a
    /// key does not validate.
    ///
    /// ```
    /// let p = tessera::policy::Policy::from_toml_str(
    ///     "[emission]\nrule = \"exponential\"\npool = \"1000\"\nstart_epoch = \"2026-W01\"\ndecay = 0.9\n").unwrap();
    /// let em = p.emission.unwrap();
    /// assert_eq!(em.pool_for("2026-W03".parse().unwrap()), Ok(810)); // 1000 → 900 → 810
    /// assert!(em.pool_for("2025-W52".parse().unwrap()).is_err());
    /// ```
    pub fn pool_for(&self, epoch: Epoch) -> Result<u128, String> {
        self.validate().map_err(|(f, m)| format!("{f}: {m}"))?;
        let start: Epoch = self.start_epoch.parse().map_err(|e| format!("{e}"))?;
        let n = epoch.index() - start.index();
        if n < 0 {
            return Err(format!("epoch {epoch} is before the emission's start_epoch {start}"));
        }
        let n = n as u64;
        let base = || parse_amount(&self.pool);
        match self.rule {
            Rule::Constant => base(),
            Rule::Halving => {
                let halvings = n / u64::from(self.halving_epochs);
                Ok(if halvings >= 128 { 0 } else { base()? >> halvings })
            }
            Rule::Exponential => {
                let keep = u128::from(crate::fixed::to_ppm(self.decay, 1.0).unwrap_or(0));
                let mut p = base()?;
                for _ in 0..n {
                    if p == 0 {
                        break;
                    }
                    // p < 10^38 and keep ≤ 10^6: the product fits u128 only below ~3.4e32, so
                    // divide first and add the remainder's share.
                    p = (p / 1_000_000) * keep + (p % 1_000_000) * keep / 1_000_000;
                }
                Ok(p)
            }
            Rule::Table => {
                let mut found = None;
                for s in &self.table {
                    let e: Epoch = s.from_epoch.parse().map_err(|e| format!("{e}"))?;
                    if e.index() <= epoch.index() {
                        found = Some(parse_amount(&s.pool)?);
                    }
                }
                found.ok_or_else(|| format!("epoch {epoch} is before the emission table's first row"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn em(text: &str) -> EmissionPolicy {
        crate::policy::Policy::from_toml_str(text).unwrap().emission.unwrap()
    }
    fn at(e: &EmissionPolicy, w: &str) -> u128 {
        e.pool_for(w.parse().unwrap()).unwrap()
    }

    #[test]
    fn constant_rule_pays_the_same_pool_every_epoch() {
        let e = em("[emission]\npool = \"7\"\nstart_epoch = \"2026-W01\"\n");
        assert_eq!((at(&e, "2026-W01"), at(&e, "2030-W20")), (7, 7));
    }

    #[test]
    fn halving_rule_halves_every_n_epochs_and_reaches_zero() {
        let e = em("[emission]\nrule = \"halving\"\npool = \"1000\"\nstart_epoch = \"2026-W01\"\nhalving_epochs = 2\n");
        let got: Vec<u128> = ["2026-W01", "2026-W02", "2026-W03", "2026-W05", "2026-W21"]
            .iter()
            .map(|w| at(&e, w))
            .collect();
        assert_eq!(got, [1000, 1000, 500, 250, 0]);
    }

    #[test]
    fn exponential_rule_floors_each_epoch_and_is_exact_near_the_decimal_limit() {
        let e = em("[emission]\nrule = \"exponential\"\npool = \"99999999999999999999999999999999999999\"\nstart_epoch = \"2026-W01\"\ndecay = 0.5\n");
        assert_eq!(at(&e, "2026-W02"), 49999999999999999999999999999999999999);
    }

    #[test]
    fn table_rule_takes_the_last_row_at_or_before_the_epoch() {
        let e = em("[emission]\nrule = \"table\"\nstart_epoch = \"2026-W01\"\n[[emission.table]]\nfrom_epoch = \"2026-W01\"\npool = \"10\"\n[[emission.table]]\nfrom_epoch = \"2026-W10\"\npool = \"4\"\n");
        assert_eq!((at(&e, "2026-W09"), at(&e, "2026-W10"), at(&e, "2027-W10")), (10, 4, 4));
    }

    #[test]
    fn epochs_before_the_start_have_no_pool() {
        let e = em("[emission]\npool = \"7\"\nstart_epoch = \"2026-W10\"\n");
        assert!(e
            .pool_for("2026-W09".parse().unwrap())
            .unwrap_err()
            .contains("start_epoch"));
    }
}
