//! `ZoneCompiler`: the zone compiler with a memory, so that a change to one object costs that
//! object and the names it touches, not the whole zone.
//!
//! The compile is split where the rules allow it:
//! - every input is a *fragment* of candidates and problems: the DNSZone's own (apex, static
//!   records, delegations) and one per selected source object. An object's fragment depends
//!   only on the zone, the object and the Gateways, so it is kept while those are unchanged
//!   (same `Arc`, or equal);
//! - the merge rules decide each owner name from that name's candidates and the zone's
//!   delegation cuts alone (`MergeCtx::merge_name`).
//!
//! So `update` recompiles the fragments of the objects that changed and re-merges the names
//! those fragments had or have. Anything that can change every name (the DNSZone, a DNSZone its
//! delegations reference, a Gateway, the options, a change that adds or removes an NS
//! record below the apex) rebuilds everything. Both paths run the same code per name, and the
//! pure `compile` is this type's first, full run; property tests check that an update gives
//! exactly what a fresh compile gives.

use super::merge::{MergeCtx, PHASE_CNAME};
use super::{
    Candidate, CompileOptions, Compiled, Compiler, Origin, Problem, Selection, Seniority, apex,
    compile_object, delegation, names, static_records, zone_namespace,
};
use crate::api::DNSZone;
use crate::objects::store::ObjectStore;
use crate::objects::{ObjectKey, SourceObject};
use crate::zone::{RRsets, SoaData, ZoneData};
use hickory_proto::rr::Name;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// What one `update` changed in `data()`.
#[derive(Debug, Default)]
pub struct Delta {
    /// Everything may have changed: rebuild whatever derives from `data()`.
    pub full: bool,
    /// Otherwise: the names that were re-merged, each with its RRsets before the update (None:
    /// the name had none). Names whose data did not change may be listed too.
    pub changed: Vec<(Name, Option<RRsets>)>,
}

/// Where a fragment sorts: the DNSZone's own first (`None`), then objects in key order.
type FragKey = Option<ObjectKey>;

/// The candidates and problems of one input.
#[derive(Debug)]
struct Fragment {
    key: FragKey,
    /// The source object it was compiled from (None: the DNSZone's own fragment).
    object: Option<Arc<SourceObject>>,
    /// The origins its candidates name; candidate origin 0 is the zone, k is `origins[k - 1]`.
    origins: Vec<Origin>,
    candidates: Vec<Candidate>,
    problems: Vec<Problem>,
}

/// One candidate: fragment slot and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CRef {
    frag: u32,
    idx: u32,
}

/// A candidate the merge dropped, with what orders it in the problem list.
#[derive(Debug)]
struct DropRec {
    phase: u8,
    /// Rule 5's drops are listed by name.
    name: Option<Name>,
    key: FragKey,
    idx: u32,
    problem: Problem,
}

/// What the last full compile depended on besides the source objects.
struct Inputs {
    zone: DNSZone,
    opts: CompileOptions,
    /// The DNSZones this zone's delegations reference (`zoneRef`), as they were.
    zones: Vec<Option<Arc<DNSZone>>>,
    gateways: Vec<Arc<SourceObject>>,
    selection: Option<Selection>,
    domain: String,
    origin: Name,
}

/// A zone compiler that keeps its intermediate results between runs (see the module docs).
pub struct ZoneCompiler {
    inputs: Option<Inputs>,
    /// Fragment slots; slot 0 is the DNSZone's own.
    frags: Vec<Option<Fragment>>,
    free: Vec<u32>,
    /// Source objects' fragments in key order.
    order: BTreeMap<ObjectKey, u32>,
    ctx: MergeCtx,
    /// Every candidate by owner name, in candidate order.
    index: HashMap<Name, Vec<CRef>>,
    /// Names with dropped candidates.
    drops: HashMap<Name, Vec<DropRec>>,
    data: ZoneData,
    problems: Vec<Problem>,
    /// The origin of the DNSZone's own candidates (origin index 0).
    zone_origin: Origin,
}

impl Default for ZoneCompiler {
    fn default() -> Self {
        Self {
            inputs: None,
            frags: Vec::new(),
            free: Vec::new(),
            order: BTreeMap::new(),
            ctx: MergeCtx::default(),
            index: HashMap::new(),
            drops: HashMap::new(),
            data: ZoneData::new(
                Name::root(),
                SoaData {
                    mname: Name::root(),
                    rname: Name::root(),
                    refresh: 0,
                    retry: 0,
                    expire: 0,
                    minimum: 0,
                    ttl: 0,
                },
            ),
            problems: Vec::new(),
            zone_origin: Origin {
                object: String::new(),
                seniority: Seniority::Zone,
            },
        }
    }
}

fn empty_zone(origin: Name, zone: &DNSZone) -> ZoneData {
    let soa = SoaData {
        mname: Name::root(),
        rname: Name::root(),
        refresh: zone.spec.soa.refresh,
        retry: zone.spec.soa.retry,
        expire: zone.spec.soa.expire,
        minimum: zone.spec.soa.negative_ttl,
        ttl: zone.spec.ttl,
    };
    ZoneData::new(origin, soa)
}

/// The same input: the same allocation, or an equal value (a feed that rebuilt it).
fn same<T: PartialEq>(a: &Arc<T>, b: &Arc<T>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

impl ZoneCompiler {
    /// The zone as compiled by the last `update`.
    pub fn data(&self) -> &ZoneData {
        &self.data
    }

    /// The problems of the last `update`, in the order `compile` documents.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    pub fn into_compiled(self) -> Compiled {
        Compiled {
            data: self.data,
            problems: self.problems,
        }
    }

    /// Compiles `zone` from `store`, reusing what the last update computed where its inputs
    /// did not change. The result is exactly what `compile(zone, store, opts)` gives.
    pub fn update(&mut self, zone: &DNSZone, store: &ObjectStore, opts: &CompileOptions) -> Delta {
        if let Some(delta) = self.try_incremental(zone, store, opts) {
            return delta;
        }
        self.rebuild(zone, store, opts);
        Delta {
            full: true,
            changed: Vec::new(),
        }
    }

    fn frag(&self, id: u32) -> &Fragment {
        slot(&self.frags, id)
    }

    fn alloc(&mut self, frag: Fragment) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.frags[id as usize] = Some(frag);
                id
            }
            None => {
                self.frags.push(Some(frag));
                (self.frags.len() - 1) as u32
            }
        }
    }

    fn rebuild(&mut self, zone: &DNSZone, store: &ObjectStore, opts: &CompileOptions) {
        *self = Self::default();
        let zone_object = format!(
            "DNSZone {}/{}",
            zone_namespace(zone),
            zone.metadata.name.as_deref().unwrap_or("")
        );
        let domain = crate::domain::normalize(&zone.spec.domain);
        let origin = match names::parse_host(&domain, names::Syntax::Host, false) {
            Ok(origin) => origin,
            Err(e) => {
                self.data = empty_zone(Name::root(), zone);
                self.problems = vec![Problem::new(
                    zone_object,
                    "spec.domain",
                    format!("{e}; the zone is empty"),
                )];
                return;
            }
        };
        let zone_origin = Origin {
            object: zone_object,
            seniority: Seniority::Zone,
        };
        self.zone_origin = zone_origin.clone();
        let mut c = Compiler::new(zone, store, &zone_origin, &domain, &origin);
        apex::compile(&mut c);
        static_records::compile(&mut c);
        delegation::compile(&mut c);
        let selection = match Selection::new(zone, opts) {
            Ok(s) => Some(s),
            Err((field, message)) => {
                c.report_zone(field, format!("{message}; no source object is read"));
                None
            }
        };
        let nameservers = std::mem::take(&mut c.nameservers);
        let soa = c.soa.take().expect("the apex step sets the SOA");
        let own = take_fragment(&mut c, None, None);
        self.frags.push(Some(own));
        if let Some(sel) = &selection {
            let selected: Vec<(&ObjectKey, &Arc<SourceObject>)> = store
                .objects
                .iter()
                .filter(|(_, o)| sel.selects(o))
                .collect();
            // Objects compile independently: on every core for a large zone.
            let base = &c;
            let frags = crate::parallel::map_chunks(&selected, 64, |chunk| {
                let mut c = base.fresh();
                chunk
                    .iter()
                    .map(|(key, obj)| {
                        compile_object(&mut c, obj);
                        take_fragment(&mut c, Some((*key).clone()), Some((*obj).clone()))
                    })
                    .collect()
            });
            for frag in frags {
                let key = frag.key.clone().expect("object fragment");
                let id = self.alloc(frag);
                self.order.insert(key, id);
            }
        }
        let ids: Vec<u32> = std::iter::once(0)
            .chain(self.order.values().copied())
            .collect();
        self.ctx = MergeCtx::new(
            &origin,
            &nameservers,
            ids.iter().flat_map(|&id| self.frag(id).candidates.iter()),
        );
        for &id in &ids {
            let frag = slot(&self.frags, id);
            for (i, cand) in frag.candidates.iter().enumerate() {
                self.index.entry(cand.name.clone()).or_default().push(CRef {
                    frag: id,
                    idx: i as u32,
                });
            }
        }
        self.data = ZoneData::new(origin.clone(), soa);
        self.data.records.reserve(self.index.len());
        // Names merge independently: on every core for a large zone.
        let entries: Vec<(&Name, &Vec<CRef>)> = self.index.iter().collect();
        let (frags, zone_origin, ctx) = (&self.frags, &self.zone_origin, &self.ctx);
        let merged = crate::parallel::map_chunks(&entries, 4096, |chunk| {
            chunk
                .iter()
                .map(|(name, refs)| {
                    let (sets, drops) = merge_one(frags, zone_origin, ctx, name, refs);
                    ((*name).clone(), sets, drops)
                })
                .collect()
        });
        for (name, sets, drops) in merged {
            self.keep_merged(name, sets, drops);
        }
        self.inputs = Some(Inputs {
            zone: zone.clone(),
            opts: opts.clone(),
            zones: referenced_zones(zone, store),
            gateways: gateways_of(store),
            selection,
            domain,
            origin,
        });
        self.collect_problems();
    }

    /// The incremental path: `None` when the inputs changed in a way that needs a rebuild.
    fn try_incremental(
        &mut self,
        zone: &DNSZone,
        store: &ObjectStore,
        opts: &CompileOptions,
    ) -> Option<Delta> {
        let inputs = self.inputs.as_ref()?;
        if inputs.zone != *zone
            || inputs.opts != *opts
            || !same_zones(&inputs.zones, &referenced_zones(zone, store))
            || !same_gateways(&inputs.gateways, store)
        {
            return None;
        }
        // Objects added, changed or removed since the last update, in key order.
        let mut changes: Vec<(&ObjectKey, Option<&Arc<SourceObject>>)> = Vec::new();
        let mut old = self.order.iter().peekable();
        if let Some(sel) = &inputs.selection {
            for (key, obj) in store.objects.iter().filter(|(_, o)| sel.selects(o)) {
                while let Some((k, _)) = old.peek()
                    && *k < key
                {
                    changes.push((k, None));
                    old.next();
                }
                match old.peek() {
                    Some((k, id)) if *k == key => {
                        let was = self.frag(**id).object.as_ref().expect("object fragment");
                        if !same(was, obj) {
                            changes.push((key, Some(obj)));
                        }
                        old.next();
                    }
                    _ => changes.push((key, Some(obj))),
                }
            }
        }
        changes.extend(old.map(|(k, _)| (k, None)));
        if changes.is_empty() {
            return Some(Delta::default());
        }

        // New fragments for added and changed objects.
        let mut c = Compiler::new(
            zone,
            store,
            &self.zone_origin,
            &inputs.domain,
            &inputs.origin,
        );
        let mut fresh: Vec<(ObjectKey, Option<Fragment>)> = Vec::with_capacity(changes.len());
        for (key, obj) in changes {
            let frag = obj.map(|obj| {
                compile_object(&mut c, obj);
                take_fragment(&mut c, Some(key.clone()), Some(obj.clone()))
            });
            fresh.push((key.clone(), frag));
        }
        // NS records below the apex move cuts, which can change any name: rebuild.
        let moves_cuts = |f: &Fragment| f.candidates.iter().any(|c| self.ctx.is_cut_ns(c));
        let touches_cuts = fresh.iter().any(|(key, new)| {
            new.as_ref().is_some_and(moves_cuts)
                || self
                    .order
                    .get(key)
                    .is_some_and(|&id| moves_cuts(self.frag(id)))
        });
        if touches_cuts {
            return None;
        }

        let mut affected: HashSet<Name> = HashSet::new();
        for (key, new) in fresh {
            if let Some(id) = self.order.remove(&key) {
                let old = self.frags[id as usize].take().expect("live fragment slot");
                for cand in &old.candidates {
                    if let Some(refs) = self.index.get_mut(&cand.name) {
                        refs.retain(|r| r.frag != id);
                        if refs.is_empty() {
                            self.index.remove(&cand.name);
                        }
                    }
                    affected.insert(cand.name.clone());
                }
                self.free.push(id);
            }
            if let Some(frag) = new {
                let names: Vec<Name> = frag.candidates.iter().map(|c| c.name.clone()).collect();
                let id = self.alloc(frag);
                self.order.insert(key.clone(), id);
                let fkey = Some(key);
                for (i, name) in names.into_iter().enumerate() {
                    let at = {
                        let refs = self.index.get(&name).map(Vec::as_slice).unwrap_or(&[]);
                        refs.partition_point(|r| {
                            (&self.frag(r.frag).key, r.idx) < (&fkey, i as u32)
                        })
                    };
                    self.index.entry(name.clone()).or_default().insert(
                        at,
                        CRef {
                            frag: id,
                            idx: i as u32,
                        },
                    );
                    affected.insert(name);
                }
            }
        }
        let mut changed = Vec::with_capacity(affected.len());
        for name in affected {
            let before = self.remerge(&name);
            changed.push((name, before));
        }
        self.collect_problems();
        Some(Delta {
            full: false,
            changed,
        })
    }

    /// Merges one name from its candidates into `data` and `drops`; returns its RRsets before.
    fn remerge(&mut self, name: &Name) -> Option<RRsets> {
        let before = self.data.records.remove(name);
        self.drops.remove(name);
        if let Some(refs) = self.index.get(name) {
            let (sets, drops) = merge_one(&self.frags, &self.zone_origin, &self.ctx, name, refs);
            self.keep_merged(name.clone(), sets, drops);
        }
        before
    }

    /// Records one name's merge result (nothing for a name without records or drops).
    fn keep_merged(&mut self, name: Name, sets: RRsets, drops: Option<Vec<DropRec>>) {
        if let Some(drops) = drops {
            self.drops.insert(name.clone(), drops);
        }
        if !sets.is_empty() {
            self.data.records.insert(name, sets);
        }
    }

    /// Inputs' problems in compile order, then the merge's drops (rules 1-3, rule 4, rule 5 by
    /// name; each in candidate order); duplicates removed.
    fn collect_problems(&mut self) {
        let mut problems: Vec<Problem> = Vec::new();
        for id in std::iter::once(0).chain(self.order.values().copied()) {
            problems.extend(self.frag(id).problems.iter().cloned());
        }
        let mut drops: Vec<&DropRec> = self.drops.values().flatten().collect();
        drops.sort_by(|a, b| {
            (a.phase, &a.name, &a.key, a.idx).cmp(&(b.phase, &b.name, &b.key, b.idx))
        });
        problems.extend(drops.into_iter().map(|d| d.problem.clone()));
        let mut seen = BTreeSet::new();
        problems.retain(|p| seen.insert(p.clone()));
        self.problems = problems;
    }
}

/// The live fragment in slot `id`.
fn slot(frags: &[Option<Fragment>], id: u32) -> &Fragment {
    frags[id as usize].as_ref().expect("live fragment slot")
}

/// Merges one name from its candidates (`refs`): its RRsets and its drops, if any.
fn merge_one(
    frags: &[Option<Fragment>],
    zone_origin: &Origin,
    ctx: &MergeCtx,
    name: &Name,
    refs: &[CRef],
) -> (RRsets, Option<Vec<DropRec>>) {
    let frag = |id: u32| slot(frags, id);
    let cands: Vec<(&Candidate, &Origin)> = refs
        .iter()
        .map(|r| {
            let f = frag(r.frag);
            let cand = &f.candidates[r.idx as usize];
            let origin = match cand.origin {
                0 => zone_origin,
                k => &f.origins[k - 1],
            };
            (cand, origin)
        })
        .collect();
    let (sets, drops) = ctx.merge_name(name, &cands);
    if drops.is_empty() {
        return (sets, None);
    }
    let recs = drops
        .into_iter()
        .map(|d| {
            let r = refs[d.index];
            let (cand, origin) = cands[d.index];
            DropRec {
                phase: d.phase,
                name: (d.phase == PHASE_CNAME).then(|| name.clone()),
                key: frag(r.frag).key.clone(),
                idx: r.idx,
                problem: Problem::new(origin.object.clone(), cand.field.clone(), d.message),
            }
        })
        .collect();
    (sets, Some(recs))
}

/// Takes what `c` gathered for one input as a fragment, leaving `c` ready for the next.
fn take_fragment(
    c: &mut Compiler<'_>,
    key: FragKey,
    object: Option<Arc<SourceObject>>,
) -> Fragment {
    Fragment {
        key,
        object,
        origins: c.origins.drain(1..).collect(),
        candidates: std::mem::take(&mut c.candidates),
        problems: std::mem::take(&mut c.problems),
    }
}

/// The DNSZones `zone`'s delegations reference by `zoneRef` (None: not in the store): the only
/// other objects the DNSZone's own fragment reads.
fn referenced_zones(zone: &DNSZone, store: &ObjectStore) -> Vec<Option<Arc<DNSZone>>> {
    zone.spec
        .delegations
        .iter()
        .filter_map(|d| d.zone_ref.as_ref())
        .map(|r| {
            let ns = r
                .namespace
                .as_ref()
                .map(|n| n.0.clone())
                .unwrap_or_else(|| zone_namespace(zone).to_string());
            store
                .zones
                .get(&(ns, r.name.clone()))
                .map(|e| e.zone.clone())
        })
        .collect()
}

fn same_zones(was: &[Option<Arc<DNSZone>>], now: &[Option<Arc<DNSZone>>]) -> bool {
    was.len() == now.len()
        && was.iter().zip(now).all(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => same(a, b),
            (None, None) => true,
            _ => false,
        })
}

fn is_gateway(o: &SourceObject) -> bool {
    matches!(o, SourceObject::Gateway(_))
}

fn gateways_of(store: &ObjectStore) -> Vec<Arc<SourceObject>> {
    store
        .objects
        .values()
        .filter(|o| is_gateway(o))
        .cloned()
        .collect()
}

fn same_gateways(was: &[Arc<SourceObject>], store: &ObjectStore) -> bool {
    let mut now = store.objects.values().filter(|o| is_gateway(o));
    was.iter().all(|g| now.next().is_some_and(|n| same(g, n))) && now.next().is_none()
}
