import Foundation

/// What happens when a buffer's memory cannot be allocated (the memory check's estimate was passed, or another
/// process took the memory meanwhile): by default a trap naming the size; a command-line tool installs a handler
/// that prints one line and exits instead.
package enum AllocationFailure {
    /// Called with the bytes that could not be allocated; must not return.
    nonisolated(unsafe) package static var handler: (Int) -> Never = { bytes in
        fatalError("failed to allocate \(bytes) bytes")
    }

    /// Reports a failed allocation of `bytes` through `handler`.
    package static func report(bytes: Int) -> Never { handler(bytes) }
}
