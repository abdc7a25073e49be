import EasyQuant
import Foundation
import XCTest

/// `Parallel` on its worker pool (Sources/CThreads): every index runs exactly once, steps
/// follow each other without mixing, and a step started while the pool is busy (nested, or
/// from another thread) still runs every index.
final class ParallelTests: XCTestCase {
    /// Calls per index of one step, counted under a lock.
    final class Tally: @unchecked Sendable {
        private let lock = Lock()
        private var counts: [Int]
        init(_ n: Int) { counts = [Int](repeating: 0, count: n) }
        func hit(_ i: Int) { lock.withLock { counts[i] += 1 } }
        var all: [Int] { lock.withLock { counts } }
    }

    func testEveryIndexRunsOnceInManySmallSteps() {
        // Thousands of short steps, as decoding runs them; sizes from 1 up, 0 included.
        for threads in [2, 3] {
            for step in 0..<3000 {
                let n = step % 17
                let tally = Tally(n)
                Parallel.forEach(n, threads: threads) { tally.hit($0) }
                XCTAssertEqual(tally.all, [Int](repeating: 1, count: n), "threads \(threads) step \(step)")
            }
        }
    }

    func testSleepingHelpersAreWokenForTheNextStep() {
        // Past the polling time the helpers sleep; the next step must wake them. Items of 1 ms
        // leave a woken helper ample time to take some, so a lost wake-up shows as a step that
        // ran on the calling thread alone.
        for _ in 0..<3 {
            Thread.sleep(forTimeInterval: 0.002)
            let tally = Tally(32)
            let lock = Lock()
            var threads = Set<UInt>()
            Parallel.forEach(32, threads: 2) { i in
                Thread.sleep(forTimeInterval: 0.001)
                lock.withLock { _ = threads.insert(UInt(pthread_self())) }
                tally.hit(i)
            }
            XCTAssertEqual(tally.all, [Int](repeating: 1, count: 32))
            XCTAssertEqual(threads.count, 2, "a sleeping helper was not woken")
        }
    }

    /// `ForwardProfile`'s count of hand-offs: every step, the calling thread's time between
    /// steps, and the workers' time waiting through it.
    func testHandOffsAreCounted() throws {
        let profile = ForwardProfile()
        profile.startCountingHandOffs()
        for _ in 0..<5 {
            // Items of 1 ms: the helper (woken if asleep) takes some of every step.
            Parallel.forEach(8, threads: 2) { _ in Thread.sleep(forTimeInterval: 0.001) }
            // The calling thread's own work between steps.
            Thread.sleep(forTimeInterval: 0.003)
        }
        profile.stopCountingHandOffs()
        Parallel.forEach(8, threads: 2) { _ in }  // after stopping: not counted
        let h = try XCTUnwrap(profile.handOffs)
        XCTAssertEqual(h.steps, 5)
        // Four gaps of at least 3 ms between five steps (the fifth sleep comes after the last).
        XCTAssertGreaterThanOrEqual(h.secondsBetweenSteps, 0.012)
        XCTAssertLessThan(h.secondsBetweenSteps, 1)
        // The helper ran items of 1 ms, and waited through (most of) the four gaps.
        XCTAssertGreaterThanOrEqual(h.workerBusySeconds, 0.002)
        XCTAssertGreaterThanOrEqual(h.workerWaitSeconds, 0.008)
        XCTAssertGreaterThan(h.workerWaitShare, 0)
        XCTAssertLessThan(h.workerWaitShare, 1)
        // A new count starts from zero.
        let again = ForwardProfile()
        again.startCountingHandOffs()
        again.stopCountingHandOffs()
        XCTAssertEqual(again.handOffs?.steps, 0)
    }

    func testNestedAndConcurrentStepsRunEveryIndex() {
        let outer = 8, inner = 50
        let tally = Tally(outer * inner)
        Parallel.forEach(outer, threads: 2) { i in
            Parallel.forEach(inner, threads: 2) { j in tally.hit(i * inner + j) }
        }
        XCTAssertEqual(tally.all, [Int](repeating: 1, count: outer * inner))
        // Two threads starting steps at once: one gets the pool, the other runs its own way.
        let both = Tally(2 * 1000)
        DispatchQueue.concurrentPerform(iterations: 2) { caller in
            for s in 0..<100 {
                Parallel.forEach(10, threads: 2) { both.hit(caller * 1000 + s * 10 + $0) }
            }
        }
        XCTAssertEqual(both.all, [Int](repeating: 1, count: 2000))
    }
}
