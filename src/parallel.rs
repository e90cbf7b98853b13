//! Data parallelism for the start-up path (parse, compile and index of a large zone) on the
//! machine's cores, with scoped threads: no pool, no dependency.

/// The number of worker threads to use: the available cores.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Maps contiguous chunks of `items` with `f` on up to `cores()` threads and concatenates the
/// results in order: the same result as `f(items)`. Inputs shorter than `2 * min_chunk` stay on
/// the calling thread.
pub fn map_chunks<T: Sync, R: Send>(
    items: &[T],
    min_chunk: usize,
    f: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    let threads = cores().min(items.len() / min_chunk.max(1));
    if threads <= 1 {
        return f(items);
    }
    let size = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(size)
            .map(|chunk| scope.spawn(|| f(chunk)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_chunks_keeps_order_and_content() {
        let items: Vec<u32> = (0..10_001).collect();
        let out = map_chunks(&items, 10, |c| c.iter().map(|x| x * 2).collect());
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let small = map_chunks(&items[..5], 10, |c| c.to_vec());
        assert_eq!(small, vec![0, 1, 2, 3, 4]);
        let empty: Vec<u32> = map_chunks(&[], 1, |c: &[u32]| c.to_vec());
        assert!(empty.is_empty());
    }
}
