import FaultlineCore
import FaultlineSystem

/// Verifies and reverts a record whose commands enter a pinned namespace: only in that namespace, found by its
/// identity (its pin, else a name or a process that lives in it); never in another one that took its place. When
/// the namespace no longer exists, nothing of the fault can be left in it: its commands are done, and only what
/// lives outside it (a delayer process) is still undone.
struct PinnedNamespaceDriver: FaultDriver {
    let context: DriverContext
    /// Finds where a pinned namespace can be entered now; nil when it is gone.
    var locate: @Sendable (PinnedNamespace) -> String? = { NamespacePin.locate($0) }

    func apply(journal: any RevertJournal) async throws(FaultlineError) -> RevertRecord {
        throw FaultlineError(.internalError, "a pinned-namespace record is only reverted")
    }

    /// The record to act on now: entering the namespace where it is found, or without its commands when it is gone.
    func resolve(_ record: RevertRecord) -> RevertRecord? {
        guard case .inNamespace(let pin, let inner) = record else { return record }
        guard let path = locate(pin) else { return inner.outsideNamespace }
        return path == pin.path ? inner : inner.enteringNamespace(pin.path, at: path)
    }

    func verify(_ record: RevertRecord) async throws(FaultlineError) -> FaultState {
        guard let resolved = resolve(record) else { return .reverted }
        return try await Drivers.driver(for: resolved, context: context).verify(resolved)
    }

    func revert(_ record: RevertRecord) async throws(FaultlineError) {
        guard let resolved = resolve(record) else { return }
        try await Drivers.driver(for: resolved, context: context).revert(resolved)
    }
}
