import FaultlineCore

/// Verifies and reverts a `.steps` record: each step by its own driver, in order.
struct StepsDriver: FaultDriver {
    let context: DriverContext

    func apply(journal: any RevertJournal) async throws(FaultlineError) -> RevertRecord {
        throw FaultlineError(.internalError, "a record of steps is only reverted")
    }

    func verify(_ record: RevertRecord) async throws(FaultlineError) -> FaultState {
        guard case .steps(let steps) = record else { return .reverted }
        var states: [FaultState] = []
        for step in steps {
            states.append(try await Drivers.driver(for: step, context: context).verify(step))
        }
        if states.allSatisfy({ $0 == .reverted }) { return .reverted }
        if states.allSatisfy({ $0 == .active }) { return .active }
        let left = states.compactMap { state -> String? in
            switch state {
            case .active: "in place"
            case .partial(let what): what
            case .reverted: nil
            }
        }
        return .partial(left.joined(separator: "; "))
    }

    /// The evidence of its first step that has any (the rules that feed a delayer, before the delayer).
    func evidence(_ record: RevertRecord) async throws(FaultlineError) -> FaultEvidence? {
        guard case .steps(let steps) = record else { return nil }
        for step in steps {
            if let found = try await Drivers.driver(for: step, context: context).evidence(step) { return found }
        }
        return nil
    }

    /// Reverts every step, even after one fails; throws what failed.
    func revert(_ record: RevertRecord) async throws(FaultlineError) {
        guard case .steps(let steps) = record else { return }
        var failures: [String] = []
        for step in steps {
            do {
                try await Drivers.driver(for: step, context: context).revert(step)
            } catch {
                failures.append(error.description)
            }
        }
        if !failures.isEmpty { throw FaultlineError(.commandFailed, failures.joined(separator: "; ")) }
    }
}
