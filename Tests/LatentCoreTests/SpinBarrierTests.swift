import Glibc
import LatentCore
import XCTest

/// The tensor-parallel team's barrier: ordering, and waking the members that fell asleep waiting.
final class SpinBarrierTests: XCTestCase {
    /// Each of 3 threads writes its slot of a round, waits, and checks every slot of the round: a barrier that let a
    /// thread through early would show it a stale slot.
    func testEveryMemberSeesEveryWriteBeforeTheBarrier() throws {
        let members = 3, rounds = 2_000
        let barrier = SpinBarrier(count: members)
        let slots = UnsafeMutablePointer<Int>.allocate(capacity: members)
        slots.initialize(repeating: -1, count: members)
        defer { slots.deallocate() }
        let pool = try WorkerPool(size: members)
        let stale = UnsafeMutablePointer<Int>.allocate(capacity: members)
        stale.initialize(repeating: 0, count: members)
        defer { stale.deallocate() }
        pool.run { part in
            for round in 0..<rounds {
                slots[part] = round
                barrier.wait()
                for other in 0..<members where slots[other] != round { stale[part] += 1 }
                barrier.wait()
            }
        }
        XCTAssertEqual((0..<members).map { stale[$0] }, [0, 0, 0])
    }

    /// A member that arrives long after the others (past the spinning) wakes the ones asleep, every round.
    func testLateMemberWakesSleepingWaiters() throws {
        let barrier = SpinBarrier(count: 2)
        let pool = try WorkerPool(size: 2)
        let rounds = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        rounds.initialize(repeating: 0, count: 2)
        defer { rounds.deallocate() }
        pool.run { part in
            for _ in 0..<5 {
                if part == 1 { usleep(UInt32(SpinBarrier.spinSeconds * 20e6)) }
                barrier.wait()
                rounds[part] += 1
            }
        }
        XCTAssertEqual([rounds[0], rounds[1]], [5, 5])
    }
}
