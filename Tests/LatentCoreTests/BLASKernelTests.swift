import Foundation
import LatentCore
import XCTest

/// `BLASKernel.replacement`: which OpenBLAS kernel the engine asks for, and when it leaves OpenBLAS's choice alone.
final class BLASKernelTests: XCTestCase {
    let dynamic = "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Prescott MAX_THREADS=64"
    let avx512: Set<String> = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]

    func testGenericFallbackIsReplacedByTheWidestKernelTheCPUHas() {
        XCTAssertEqual(BLASKernel.replacement(current: "Prescott", configuration: dynamic, cpuFlags: avx512,
                                              userChoice: nil), "SkylakeX")
        XCTAssertEqual(BLASKernel.replacement(current: "Prescott", configuration: dynamic,
                                              cpuFlags: ["avx", "avx2", "fma", "avx512f"], userChoice: nil),
                       "Haswell", "AVX-512 foundation alone is not what the SkylakeX kernel needs")
        XCTAssertEqual(BLASKernel.replacement(current: "Prescott", configuration: dynamic, cpuFlags: ["avx", "avx2"],
                                              userChoice: nil), "Sandybridge", "AVX2 without FMA")
        XCTAssertNil(BLASKernel.replacement(current: "Prescott", configuration: dynamic, cpuFlags: ["sse4_2"],
                                            userChoice: nil), "an SSE-only CPU keeps the generic kernel")
    }

    func testOpenBLASsOwnKnownKernelAndTheUsersChoiceAreKept() {
        for own in ["SkylakeX", "Cooperlake", "Haswell", "Zen"] {
            XCTAssertNil(BLASKernel.replacement(current: own, configuration: dynamic, cpuFlags: avx512, userChoice: nil))
        }
        XCTAssertNil(BLASKernel.replacement(current: "Prescott", configuration: dynamic, cpuFlags: avx512,
                                            userChoice: "Prescott"), "OPENBLAS_CORETYPE set by the user wins")
        XCTAssertNil(BLASKernel.replacement(current: "Prescott", configuration: "OpenBLAS 0.3.21 NO_AFFINITY Prescott",
                                            cpuFlags: avx512, userChoice: nil),
                     "a build for one kernel ignores OPENBLAS_CORETYPE")
    }

    func testCPUFlagsAreReadFromTheFlagsLine() throws {
        let file = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("cpuinfo-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try "processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse2 avx2 fma avx512f\nbugs\t\t: none\n"
            .write(to: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(BLASKernel.cpuFlags(cpuinfo: file.path), ["fpu", "sse2", "avx2", "fma", "avx512f"])
        XCTAssertEqual(BLASKernel.cpuFlags(cpuinfo: file.path + ".missing"), [])
    }
}
