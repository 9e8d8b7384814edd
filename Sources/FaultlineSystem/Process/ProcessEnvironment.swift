#if canImport(Glibc)
import Glibc
#endif

/// This process's environment, for what reads it rather than taking arguments (swift-otel's OTEL_* variables).
public enum ProcessEnvironment {
    public static func set(_ name: String, _ value: String) { setenv(name, value, 1) }

    public static func unset(_ name: String) { unsetenv(name) }
}
