import Dispatch

/// Runs `count` independent chunks of work on the machine's threads (the caller takes part); serially when count is 1.
@usableFromInline package enum Parallel {
    /// `body(part)` for part in 0..<count, concurrently. Callers guarantee that parts write disjoint memory
    /// (each worker owns its workspace, gradient buffer and parameter range), which is why the closure need not be
    /// `@Sendable`.
    @usableFromInline package static func run(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 {
            body(0)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let shared = UncheckedSendable(value: escapable)
            DispatchQueue.concurrentPerform(iterations: count) { shared.value($0) }
        }
    }

    /// The half-open slice `part` of `total` items split into `parts` near-equal contiguous ranges.
    @inlinable
    package static func slice(_ total: Int, parts: Int, part: Int) -> Range<Int> {
        let base = total / parts, extra = total % parts
        let start = part * base + min(part, extra)
        return start..<(start + base + (part < extra ? 1 : 0))
    }
}

/// Carries a closure across threads whose work the caller has partitioned into disjoint memory.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}
