//! Stage 2, visits: where the visits of the epoch are while sources are covered — in memory
//! until they outgrow the budget, then range buckets on disk (`spill.rs`).

use crate::cells::VisitMap;
use crate::lake::Result;
use crate::spill;
use std::path::PathBuf;

/// Where the visits of the epoch are while sources are covered: in memory until they outgrow
/// the budget, then range buckets on disk (`spill.rs`).
pub(super) struct VisitStore {
    pub map: VisitMap,
    pub max: usize,
    pub spill: Option<spill::Spill>,
    pub dir: PathBuf,
}

impl VisitStore {
    pub fn add(&mut self, visits: VisitMap) -> Result<()> {
        for (key, v) in visits {
            self.map.entry(key).and_modify(|e| *e = e.merge(v)).or_insert(v);
        }
        if self.map.len() > self.max {
            if self.spill.is_none() {
                let cells: Vec<u64> = self.map.keys().map(|k| k.0).collect();
                let bounds = spill::bounds_from(cells, spill::BUCKETS);
                self.spill = Some(spill::Spill::new(&self.dir, bounds)?);
            }
            self.spill.as_mut().expect("created above").drain(&mut self.map)?;
        }
        Ok(())
    }
}
