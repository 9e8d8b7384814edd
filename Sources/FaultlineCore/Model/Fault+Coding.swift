/// A coding key made from any string, for the flat fault mapping.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Fault: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        name = try c.decode(ResourceName.self, forKey: AnyKey("name"))
        start = try c.decodeIfPresent(TimeSpan.self, forKey: AnyKey("start")) ?? .zero
        duration = try c.decodeIfPresent(TimeSpan.self, forKey: AnyKey("duration"))
        target = try c.decodeIfPresent(NetnsTarget.self, forKey: AnyKey("target"))
        let type = try c.decode(FaultType.self, forKey: AnyKey("type"))
        switch type {
        case .latency: action = .latency(try LatencyFault(from: decoder))
        case .packetLoss: action = .packetLoss(try NetemRateFault(from: decoder))
        case .corrupt: action = .corrupt(try NetemRateFault(from: decoder))
        case .duplicate: action = .duplicate(try NetemRateFault(from: decoder))
        case .reorder: action = .reorder(try ReorderFault(from: decoder))
        case .bandwidth: action = .bandwidth(try BandwidthFault(from: decoder))
        case .drop: action = .drop(try DropFault(from: decoder))
        case .killProcess: action = .killProcess(try KillProcessFault(from: decoder))
        case .pauseProcess: action = .pauseProcess(try PauseProcessFault(from: decoder))
        case .diskFill: action = .diskFill(try DiskFillFault(from: decoder))
        case .cpuStress: action = .cpuStress(try CPUStressFault(from: decoder))
        case .memoryStress: action = .memoryStress(try MemoryStressFault(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(name, forKey: AnyKey("name"))
        try c.encode(type, forKey: AnyKey("type"))
        try c.encode(start, forKey: AnyKey("start"))
        try c.encodeIfPresent(duration, forKey: AnyKey("duration"))
        try c.encodeIfPresent(target, forKey: AnyKey("target"))
        switch action {
        case .latency(let f): try f.encode(to: encoder)
        case .packetLoss(let f), .corrupt(let f), .duplicate(let f): try f.encode(to: encoder)
        case .reorder(let f): try f.encode(to: encoder)
        case .bandwidth(let f): try f.encode(to: encoder)
        case .drop(let f): try f.encode(to: encoder)
        case .killProcess(let f): try f.encode(to: encoder)
        case .pauseProcess(let f): try f.encode(to: encoder)
        case .diskFill(let f): try f.encode(to: encoder)
        case .cpuStress(let f): try f.encode(to: encoder)
        case .memoryStress(let f): try f.encode(to: encoder)
        }
    }
}

extension FillAmount {
    func encode(into c: inout KeyedEncodingContainer<AnyKey>) throws {
        switch self {
        case .fillTo(let percent): try c.encode(percent, forKey: AnyKey("fillTo"))
        case .size(let size): try c.encode(size, forKey: AnyKey("size"))
        }
    }

    init(from c: KeyedDecodingContainer<AnyKey>) throws {
        if let percent = try c.decodeIfPresent(Percent.self, forKey: AnyKey("fillTo")) {
            self = .fillTo(percent)
        } else {
            self = .size(try c.decode(ByteCount.self, forKey: AnyKey("size")))
        }
    }
}

extension DiskFillFault: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        path = try c.decode(String.self, forKey: AnyKey("path"))
        amount = try FillAmount(from: c)
        reserve = try c.decodeIfPresent(ByteCount.self, forKey: AnyKey("reserve"))
        owner = try c.decodeIfPresent(ProcessIdentity.self, forKey: AnyKey("owner"))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(path, forKey: AnyKey("path"))
        try amount.encode(into: &c)
        try c.encodeIfPresent(reserve, forKey: AnyKey("reserve"))
        try c.encodeIfPresent(owner, forKey: AnyKey("owner"))
    }
}

extension MemoryStressFault: Codable {
    public init(from decoder: any Decoder) throws {
        amount = try FillAmount(from: decoder.container(keyedBy: AnyKey.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try amount.encode(into: &c)
    }
}
