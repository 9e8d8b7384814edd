import ArgumentParser
import FaultlineSystem
import Foundation

/// `--runtime-socket`: the container runtime a scenario's container targets are found through.
struct RuntimeOptions: ParsableArguments {
    @Option(name: .customLong("runtime-socket"), help: ArgumentHelp(
        "The container runtime's socket that container targets are found through (default: env FAULTLINE_RUNTIME_SOCKET, else the usual places of docker, podman and containerd).",
        valueName: "path"))
    var socket: String?

    /// The socket given, else the environment's; nil: the usual places.
    var runtimeSocket: String? {
        socket ?? ProcessInfo.processInfo.environment[ContainerResolver.environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
    }
}
