#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed-size, 64-byte-aligned, zero-initialized scalar buffer owned by a class: allocated once, reused every step.
///
/// Hot loops take its `pointer` once; there are no bounds or uniqueness checks on the way. A buffer can also be a
/// view of part of another (`init(viewOf:offset:count:)`), which it keeps alive.
@usableFromInline package final class Buffer<T: BLASScalar>: @unchecked Sendable {
    @usableFromInline package let count: Int
    @usableFromInline package let pointer: UnsafeMutablePointer<T>
    /// The buffer whose memory this one views (nil when it owns its memory).
    private let base: Buffer<T>?

    @usableFromInline package init(count: Int) {
        self.count = count
        let (bytes, overflow) = max(1, count).multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        var memory: UnsafeMutableRawPointer?
        guard !overflow, posix_memalign(&memory, 64, bytes) == 0, let raw = memory else {
            AllocationFailure.report(bytes: overflow ? Int.max : bytes)
        }
        pointer = raw.bindMemory(to: T.self, capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
        base = nil
    }

    /// `count` elements of `base` from `offset` on, shared with it (the tensor-parallel trainer's per-worker
    /// workspaces are views of one batch-sized workspace).
    @usableFromInline package init(viewOf base: Buffer<T>, offset: Int, count: Int) {
        precondition(offset >= 0 && offset + count <= base.count, "a view lies inside its buffer")
        self.count = count
        pointer = base.pointer + offset
        self.base = base
    }

    @usableFromInline package convenience init(_ values: [T]) {
        self.init(count: values.count)
        for i in 0..<values.count { pointer[i] = values[i] }
    }

    deinit { if base == nil { free(pointer) } }

    @usableFromInline package var array: [T] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    @usableFromInline package subscript(i: Int) -> T {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    @usableFromInline package func zero() { pointer.update(repeating: 0, count: count) }
}
