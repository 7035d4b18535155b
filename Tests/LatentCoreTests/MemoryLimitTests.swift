import Foundation
@testable import LatentCore
import XCTest

/// The memory check's control-group limits: which files apply to a process, and what their contents mean.
final class MemoryLimitTests: XCTestCase {
    /// A parent group's limit binds its children: the group's own file, then each ancestor's up to the root.
    func testV2MembershipNamesTheGroupAndEveryAncestor() {
        let files = MemoryLimit.limitFiles(membership: "0::/user.slice/run-1.scope\n", root: "/cg")
        XCTAssertEqual(files, ["/cg/user.slice/run-1.scope/memory.max", "/cg/user.slice/memory.max", "/cg/memory.max"])
    }

    /// A container with a cgroup namespace sees itself at "/": its own limit is the hierarchy's root file.
    func testV2NamespacedMembershipNamesTheRootOnce() {
        XCTAssertEqual(MemoryLimit.limitFiles(membership: "0::/\n", root: "/cg"), ["/cg/memory.max"])
    }

    func testV1MembershipUsesOnlyTheMemoryController() {
        let membership = """
            9:systemd:/
            4:memory:/process_api/5afd
            3:cpu,cpuacct:/other
            2:blkio,memory:/shared
            """
        XCTAssertEqual(MemoryLimit.limitFiles(membership: membership, root: "/cg"), [
            "/cg/memory/process_api/5afd/memory.limit_in_bytes", "/cg/memory/process_api/memory.limit_in_bytes",
            "/cg/memory/memory.limit_in_bytes", "/cg/memory/shared/memory.limit_in_bytes",
        ])
    }

    func testMalformedLinesAreIgnored() {
        XCTAssertEqual(MemoryLimit.limitFiles(membership: "garbage\n\n1:name=systemd:/\n", root: "/cg"), [])
    }

    func testLimitValues() {
        XCTAssertEqual(MemoryLimit.parseLimit("2147483648\n"), 2_147_483_648)
        XCTAssertNil(MemoryLimit.parseLimit("max\n"), "v2's 'max' is no limit")
        XCTAssertNil(MemoryLimit.parseLimit("9223372036854771712\n"), "v1's 'unlimited' is 2⁶³ rounded down to pages")
        XCTAssertNil(MemoryLimit.parseLimit("not a number"))
    }

    /// On any machine the answer is positive and never more than physical memory.
    func testAvailableIsAtMostPhysicalMemory() {
        let available = MemoryLimit.available()
        let physical = Double(ProcessInfo.processInfo.physicalMemory)
        XCTAssertGreaterThan(available.bytes, 0)
        XCTAssertLessThanOrEqual(available.bytes, physical)
        XCTAssertEqual(available.isControlGroupLimit, available.bytes < physical)
    }
}
