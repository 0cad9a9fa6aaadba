//! IANA code points used on the wire: message types, address families,
//! capability codes, path attribute type codes and NOTIFICATION codes.
//!
//! Every enum keeps values it has no name for in an `Other` variant, so a
//! decoded code can always be encoded back unchanged. `From<u8>` (or `u16`)
//! never yields `Other` for a named value.

macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $name:ident : $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A code point without a name here, kept as received.
            Other($repr),
        }

        impl From<$repr> for $name {
            fn from(value: $repr) -> Self {
                match value {
                    $( $value => Self::$variant, )+
                    other => Self::Other(other),
                }
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> $repr {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Other(other) => other,
                }
            }
        }
    };
}

code_enum! {
    /// BGP message types (RFC 4271 §4.1, RFC 2918).
    MessageType: u8 {
        Open = 1,
        Update = 2,
        Notification = 3,
        Keepalive = 4,
        RouteRefresh = 5,
    }
}

code_enum! {
    /// Address Family Identifiers (IANA "Address Family Numbers").
    Afi: u16 {
        Ipv4 = 1,
        Ipv6 = 2,
        L2vpn = 25,
    }
}

code_enum! {
    /// Subsequent Address Family Identifiers (RFC 4760).
    Safi: u8 {
        Unicast = 1,
        Multicast = 2,
        MplsLabel = 4,
        Evpn = 70,
        MplsVpn = 128,
        FlowSpec = 133,
    }
}

code_enum! {
    /// Capability codes (RFC 5492 registry).
    CapabilityCode: u8 {
        Multiprotocol = 1,
        RouteRefresh = 2,
        ExtendedNextHop = 5,
        ExtendedMessage = 6,
        BgpRole = 9,
        GracefulRestart = 64,
        FourOctetAs = 65,
        AddPath = 69,
        EnhancedRouteRefresh = 70,
        LongLivedGracefulRestart = 71,
        Fqdn = 73,
        SoftwareVersion = 75,
        RouteRefreshCisco = 128,
    }
}

code_enum! {
    /// Path attribute type codes.
    AttrType: u8 {
        Origin = 1,
        AsPath = 2,
        NextHop = 3,
        MultiExitDisc = 4,
        LocalPref = 5,
        AtomicAggregate = 6,
        Aggregator = 7,
        Communities = 8,
        OriginatorId = 9,
        ClusterList = 10,
        MpReachNlri = 14,
        MpUnreachNlri = 15,
        ExtendedCommunities = 16,
        As4Path = 17,
        As4Aggregator = 18,
        LargeCommunity = 32,
    }
}

code_enum! {
    /// Message Header Error subcodes (NOTIFICATION code 1).
    HeaderSubcode: u8 {
        Unspecific = 0,
        ConnectionNotSynchronized = 1,
        BadMessageLength = 2,
        BadMessageType = 3,
    }
}

code_enum! {
    /// OPEN Message Error subcodes (NOTIFICATION code 2; RFC 4271, 5492, 9234).
    OpenSubcode: u8 {
        Unspecific = 0,
        UnsupportedVersionNumber = 1,
        BadPeerAs = 2,
        BadBgpIdentifier = 3,
        UnsupportedOptionalParameter = 4,
        UnacceptableHoldTime = 6,
        UnsupportedCapability = 7,
        RoleMismatch = 11,
    }
}

code_enum! {
    /// UPDATE Message Error subcodes (NOTIFICATION code 3).
    UpdateSubcode: u8 {
        Unspecific = 0,
        MalformedAttributeList = 1,
        UnrecognizedWellKnownAttribute = 2,
        MissingWellKnownAttribute = 3,
        AttributeFlagsError = 4,
        AttributeLengthError = 5,
        InvalidOriginAttribute = 6,
        InvalidNextHopAttribute = 8,
        OptionalAttributeError = 9,
        InvalidNetworkField = 10,
        MalformedAsPath = 11,
    }
}

code_enum! {
    /// Finite State Machine Error subcodes (NOTIFICATION code 5; RFC 6608).
    FsmSubcode: u8 {
        Unspecified = 0,
        UnexpectedMessageInOpenSent = 1,
        UnexpectedMessageInOpenConfirm = 2,
        UnexpectedMessageInEstablished = 3,
    }
}

code_enum! {
    /// Cease subcodes (NOTIFICATION code 6; RFC 4486, 8538, 9384).
    CeaseSubcode: u8 {
        MaximumPrefixesReached = 1,
        AdministrativeShutdown = 2,
        PeerDeconfigured = 3,
        AdministrativeReset = 4,
        ConnectionRejected = 5,
        OtherConfigurationChange = 6,
        ConnectionCollisionResolution = 7,
        OutOfResources = 8,
        HardReset = 9,
        BfdDown = 10,
    }
}

code_enum! {
    /// ROUTE-REFRESH Message Error subcodes (NOTIFICATION code 7; RFC 7313).
    RouteRefreshSubcode: u8 {
        InvalidMessageLength = 1,
    }
}

code_enum! {
    /// ROUTE-REFRESH message subtypes (RFC 7313 §3).
    RouteRefreshSubtype: u8 {
        Normal = 0,
        BeginningOfRouteRefresh = 1,
        EndOfRouteRefresh = 2,
    }
}

code_enum! {
    /// ADD-PATH Send/Receive field (RFC 7911 §4).
    AddPathMode: u8 {
        Receive = 1,
        Send = 2,
        Both = 3,
    }
}

impl AddPathMode {
    /// The peer that sent this will accept path identifiers from us.
    pub fn receives(self) -> bool {
        matches!(self, Self::Receive | Self::Both)
    }
    /// The peer that sent this may send us path identifiers.
    pub fn sends(self) -> bool {
        matches!(self, Self::Send | Self::Both)
    }
}

/// NOTIFICATION error codes (RFC 4271 §4.5, RFC 2918/7313, RFC 9687).
pub mod error_code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
    pub const SEND_HOLD_TIMER_EXPIRED: u8 = 8;
}

/// Path attribute flag bits (RFC 4271 §4.3).
pub mod attr_flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// AS_TRANS, the 2-octet stand-in for a 4-octet AS number (RFC 6793).
pub const AS_TRANS: u16 = 23456;
