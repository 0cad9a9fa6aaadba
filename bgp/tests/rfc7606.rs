//! One test per RFC 7606 case the codec implements, asserting the action it
//! prescribes and the NOTIFICATION it would send.

mod common;

use bgp::wire::iana::UpdateSubcode;
use bgp::wire::{
    Action, AsPath, AttrType, AttrValue, Cause, Context, DecodeError, Family, Malformation, Update,
};
use common::*;

/// Decode an UPDATE whose attributes are the mandatory ones plus `extra`,
/// announcing 10.1.0.0/16, and return the single RFC 7606 error found.
fn single_error(extra: &[u8]) -> (Update, bgp::wire::AttrError) {
    single_error_with(extra, &Context::modern())
}

fn single_error_with(extra: &[u8], ctx: &Context) -> (Update, bgp::wire::AttrError) {
    let u = decode_update_with(
        &update(&[], &[mandatory_for(ctx), extra.to_vec()].concat(), NLRI),
        ctx,
    );
    assert_eq!(u.errors.len(), 1, "errors: {:?}", u.errors);
    let e = u.errors[0].clone();
    (u, e)
}

fn assert_update_subcode(e: &bgp::wire::AttrError, subcode: UpdateSubcode) {
    assert_eq!(e.notification().cause, Cause::Update(subcode));
}

// §7.1 ORIGIN
#[test]
fn origin_with_bad_length_is_treat_as_withdraw() {
    let attrs = [
        attr(0x40, 1, &[0, 0]),
        attr(0x40, 2, &[]),
        attr(0x40, 3, &[192, 0, 2, 1]),
    ]
    .concat();
    let u = decode_update(&update(&[], &attrs, NLRI));
    assert!(u.treat_as_withdraw());
    assert_eq!(u.errors[0].attr, AttrType::Origin);
    assert_eq!(u.errors[0].malformation, Malformation::Length);
    assert_update_subcode(&u.errors[0], UpdateSubcode::AttributeLengthError);
    // The announced prefix is still there, to be withdrawn.
    assert_eq!(u.nlri.len(), 1);
}

#[test]
fn origin_with_undefined_value_is_treat_as_withdraw() {
    let attrs = [
        attr(0x40, 1, &[3]),
        attr(0x40, 2, &[]),
        attr(0x40, 3, &[192, 0, 2, 1]),
    ]
    .concat();
    let u = decode_update(&update(&[], &attrs, NLRI));
    assert!(u.treat_as_withdraw());
    assert_eq!(u.errors[0].action, Action::TreatAsWithdraw);
    assert_update_subcode(&u.errors[0], UpdateSubcode::InvalidOriginAttribute);
}

// §7.2 AS_PATH
fn as_path_error(value: &[u8]) -> bgp::wire::AttrError {
    let attrs = [
        attr(0x40, 1, &[0]),
        attr(0x40, 2, value),
        attr(0x40, 3, &[192, 0, 2, 1]),
    ]
    .concat();
    let u = decode_update(&update(&[], &attrs, NLRI));
    assert_eq!(u.errors.len(), 1, "{:?}", u.errors);
    let e = u.errors[0].clone();
    assert_eq!(e.action, Action::TreatAsWithdraw);
    assert_update_subcode(&e, UpdateSubcode::MalformedAsPath);
    e
}

#[test]
fn as_path_segment_overrun_is_treat_as_withdraw() {
    as_path_error(&[2, 2, 0, 0, 0xfd, 0xe9]);
}

#[test]
fn as_path_single_trailing_octet_is_treat_as_withdraw() {
    as_path_error(&[2, 1, 0, 0, 0xfd, 0xe9, 2]);
}

#[test]
fn as_path_zero_length_segment_is_treat_as_withdraw() {
    as_path_error(&[2, 0]);
}

#[test]
fn as_path_unknown_segment_type_is_treat_as_withdraw() {
    as_path_error(&[5, 1, 0, 0, 0xfd, 0xe9]);
}

// §7.3 NEXT_HOP
#[test]
fn next_hop_with_bad_length_is_treat_as_withdraw() {
    let attrs = [
        attr(0x40, 1, &[0]),
        attr(0x40, 2, &[]),
        attr(0x40, 3, &[192, 0, 2]),
    ]
    .concat();
    let u = decode_update(&update(&[], &attrs, NLRI));
    assert!(u.treat_as_withdraw());
    assert_eq!(
        u.errors.len(),
        1,
        "a reported NEXT_HOP is not also missing: {:?}",
        u.errors
    );
    assert_update_subcode(&u.errors[0], UpdateSubcode::AttributeLengthError);
}

// §7.4 MULTI_EXIT_DISC
#[test]
fn med_with_bad_length_is_treat_as_withdraw() {
    let (u, e) = single_error(&attr(0x80, 4, &[0, 0, 1]));
    assert!(u.treat_as_withdraw());
    assert_eq!(e.attr, AttrType::MultiExitDisc);
}

// §7.5 LOCAL_PREF
#[test]
fn local_pref_with_bad_length_is_treat_as_withdraw() {
    let (u, e) = single_error(&attr(0x40, 5, &[0, 0, 0, 100, 0]));
    assert!(u.treat_as_withdraw());
    assert_eq!(e.attr, AttrType::LocalPref);
}

// §7.6 ATOMIC_AGGREGATE
#[test]
fn atomic_aggregate_with_bad_length_is_discarded() {
    let (u, e) = single_error(&attr(0x40, 6, &[1]));
    assert_eq!(e.action, Action::AttributeDiscard);
    assert!(!u.treat_as_withdraw());
    assert!(u.attr(AttrType::AtomicAggregate).is_none());
    assert!(u.origin().is_some(), "the rest of the UPDATE is kept");
}

// §7.7 AGGREGATOR
#[test]
fn aggregator_with_bad_length_is_discarded() {
    // 6 bytes is a 2-octet AGGREGATOR, wrong on a 4-octet session.
    let (u, e) = single_error(&attr(0xc0, 7, &[0xfd, 0xe9, 192, 0, 2, 1]));
    assert_eq!(e.action, Action::AttributeDiscard);
    assert!(u.attr(AttrType::Aggregator).is_none());
    assert_update_subcode(&e, UpdateSubcode::AttributeLengthError);
}

#[test]
fn aggregator_length_follows_the_negotiated_as_size() {
    let ctx = Context::default(); // 2-octet
    let attrs = [
        attr(0x40, 1, &[0]),
        attr(0x40, 2, &[2, 1, 0xfd, 0xe9]),
        attr(0x40, 3, &[192, 0, 2, 1]),
        attr(0xc0, 7, &[0xfd, 0xe9, 192, 0, 2, 1]),
    ]
    .concat();
    let u = decode_update_with(&update(&[], &attrs, NLRI), &ctx);
    assert!(u.errors.is_empty(), "{:?}", u.errors);
    let (_, e) = single_error_with(&attr(0xc0, 7, &[0, 0, 0xfd, 0xe9, 192, 0, 2, 1]), &ctx);
    assert_eq!(e.action, Action::AttributeDiscard);
}

// §7.8 COMMUNITIES
#[test]
fn communities_not_a_multiple_of_four_is_treat_as_withdraw() {
    let (u, e) = single_error(&attr(0xc0, 8, &[0, 1, 0, 2, 3]));
    assert!(u.treat_as_withdraw());
    assert_update_subcode(&e, UpdateSubcode::AttributeLengthError);
}

#[test]
fn empty_communities_is_treat_as_withdraw() {
    let (u, _) = single_error(&attr(0xc0, 8, &[]));
    assert!(u.treat_as_withdraw());
}

// §7.9 ORIGINATOR_ID
#[test]
fn originator_id_with_bad_length_is_treat_as_withdraw() {
    let (u, e) = single_error(&attr(0x80, 9, &[1, 2, 3, 4, 5]));
    assert!(u.treat_as_withdraw());
    assert_eq!(e.attr, AttrType::OriginatorId);
}

// §7.10 CLUSTER_LIST
#[test]
fn cluster_list_with_bad_length_is_treat_as_withdraw() {
    let (u, e) = single_error(&attr(0x80, 10, &[1, 2, 3]));
    assert!(u.treat_as_withdraw());
    assert_eq!(e.attr, AttrType::ClusterList);
}

// §7.14 EXTENDED_COMMUNITIES
#[test]
fn extended_communities_not_a_multiple_of_eight_is_treat_as_withdraw() {
    let (u, e) = single_error(&attr(0xc0, 16, &[0, 2, 0, 1, 0, 0, 0]));
    assert!(u.treat_as_withdraw());
    assert_eq!(e.attr, AttrType::ExtendedCommunities);
}

// RFC 8092 §6 LARGE_COMMUNITY
#[test]
fn large_communities_not_a_multiple_of_twelve_is_treat_as_withdraw() {
    let (u, e) = single_error(&attr(0xc0, 32, &[0; 13]));
    assert!(u.treat_as_withdraw());
    assert_eq!(e.attr, AttrType::LargeCommunity);
}

// RFC 6793 §6 AS4_PATH and AS4_AGGREGATOR
#[test]
fn malformed_as4_path_is_discarded() {
    let (u, e) = single_error_with(&attr(0xc0, 17, &[2, 2, 0, 0, 0, 1]), &Context::default());
    assert_eq!(e.action, Action::AttributeDiscard);
    assert!(!u.treat_as_withdraw());
}

#[test]
fn as4_path_confederation_segments_are_dropped_and_the_rest_kept() {
    // AS_CONFED_SEQUENCE [65536] then AS_SEQUENCE [65537].
    let value = [3, 1, 0, 1, 0, 0, 2, 1, 0, 1, 0, 1];
    let (u, e) = single_error_with(&attr(0xc0, 17, &value), &Context::default());
    assert_eq!(e.malformation, Malformation::ConfedInAs4Path);
    assert_eq!(e.action, Action::AttributeDiscard);
    assert_eq!(
        u.attr(AttrType::As4Path),
        Some(&AttrValue::As4Path(AsPath::sequence([65537])))
    );
}

#[test]
fn empty_as4_path_is_discarded() {
    let (u, e) = single_error_with(&attr(0xc0, 17, &[]), &Context::default());
    assert_eq!(e.action, Action::AttributeDiscard);
    assert!(u.attr(AttrType::As4Path).is_none());
}

#[test]
fn as4_aggregator_from_a_four_octet_speaker_is_discarded() {
    let (_, e) = single_error(&attr(0xc0, 18, &[0, 1, 0, 0, 192, 0, 2, 1]));
    assert_eq!(e.malformation, Malformation::UnexpectedAs4);
    assert_eq!(e.action, Action::AttributeDiscard);
}

#[test]
fn as4_aggregator_with_bad_length_is_discarded() {
    let (_, e) = single_error_with(
        &attr(0xc0, 18, &[0, 1, 0, 0, 192, 0, 2]),
        &Context::default(),
    );
    assert_eq!(e.action, Action::AttributeDiscard);
}

#[test]
fn as4_path_from_a_four_octet_speaker_is_discarded() {
    let (u, e) = single_error(&attr(0xc0, 17, &[2, 1, 0, 1, 0, 0]));
    assert_eq!(e.malformation, Malformation::UnexpectedAs4);
    assert_eq!(e.action, Action::AttributeDiscard);
    assert!(u.attr(AttrType::As4Path).is_none());
}

// §3 c: flags
#[test]
fn well_known_attribute_marked_optional_is_treat_as_withdraw() {
    let (u, e) = single_error(&attr(0xc0, 5, &[0, 0, 0, 100]));
    assert!(u.treat_as_withdraw());
    assert_eq!(e.malformation, Malformation::Flags);
    assert_update_subcode(&e, UpdateSubcode::AttributeFlagsError);
    assert!(u.local_pref().is_none());
}

#[test]
fn optional_attribute_marked_well_known_is_treat_as_withdraw() {
    let (u, e) = single_error(&attr(0x40, 8, &[0, 1, 0, 2]));
    assert!(u.treat_as_withdraw());
    assert_eq!(e.malformation, Malformation::Flags);
}

#[test]
fn partial_and_extended_length_bits_are_not_flag_errors() {
    // COMMUNITIES with Partial and Extended Length set: well-formed.
    let u = decode_update(&update(
        &[],
        &[mandatory(), vec![0xf0, 8, 0, 4, 0, 1, 0, 2]].concat(),
        NLRI,
    ));
    assert!(u.errors.is_empty(), "{:?}", u.errors);
    assert_eq!(u.communities().len(), 1);
}

#[test]
fn mp_reach_with_bad_flags_still_yields_its_prefixes_to_withdraw() {
    // Transitive set on MP_REACH_NLRI (optional non-transitive).
    let mp = [
        &[0, 2, 1, 16][..],
        &V6_NEXT_HOP,
        &[0],
        &[32, 0x20, 1, 0xd, 0xb8],
    ]
    .concat();
    let attrs = [attr(0x40, 1, &[0]), attr(0x40, 2, &[]), attr(0xc0, 14, &mp)].concat();
    let u = decode_update(&update(&[], &attrs, &[]));
    assert!(u.treat_as_withdraw());
    assert_eq!(u.mp_reach().map(|r| r.nlri.len()), Some(1));
}

// §3 g: duplicates
#[test]
fn duplicate_attribute_keeps_the_first_and_discards_the_rest() {
    let (u, e) = single_error(
        &[
            attr(0x40, 5, &[0, 0, 0, 100]),
            attr(0x40, 5, &[0, 0, 0, 200]),
        ]
        .concat(),
    );
    assert_eq!(e.malformation, Malformation::Duplicate);
    assert_eq!(e.action, Action::AttributeDiscard);
    assert_eq!(u.local_pref(), Some(100));
    assert!(!u.treat_as_withdraw());
}

#[test]
fn duplicate_mp_reach_resets_the_session() {
    let mp = attr(
        0x80,
        14,
        &[
            &[0, 2, 1, 16][..],
            &V6_NEXT_HOP,
            &[0, 32, 0x20, 1, 0xd, 0xb8],
        ]
        .concat(),
    );
    let err = decode_err(&update(&[], &[mandatory(), mp.clone(), mp].concat(), &[]));
    assert_eq!(err, DecodeError::DuplicateMpAttribute);
}

#[test]
fn duplicate_mp_unreach_resets_the_session() {
    let mp = attr(0x80, 15, &[0, 2, 1]);
    let err = decode_err(&update(&[], &[mp.clone(), mp].concat(), &[]));
    assert_eq!(err, DecodeError::DuplicateMpAttribute);
    assert_eq!(
        err.notification().cause,
        Cause::Update(UpdateSubcode::MalformedAttributeList)
    );
}

// §3 d: missing well-known mandatory attributes
#[test]
fn missing_mandatory_attributes_are_treat_as_withdraw() {
    let u = decode_update(&update(&[], &attr(0x40, 1, &[0]), NLRI));
    assert!(u.treat_as_withdraw());
    let missing: Vec<_> = u.errors.iter().map(|e| e.attr).collect();
    assert_eq!(missing, vec![AttrType::AsPath, AttrType::NextHop]);
    let n = u.errors[0].notification();
    assert_eq!(
        n.cause,
        Cause::Update(UpdateSubcode::MissingWellKnownAttribute)
    );
    assert_eq!(&n.data[..], &[2]);
}

#[test]
fn next_hop_is_not_required_for_mp_reach_only() {
    let mp = [
        &[0, 2, 1, 16][..],
        &V6_NEXT_HOP,
        &[0],
        &[32, 0x20, 1, 0xd, 0xb8],
    ]
    .concat();
    let attrs = [attr(0x80, 14, &mp), attr(0x40, 1, &[0]), attr(0x40, 2, &[])].concat();
    let u = decode_update(&update(&[], &attrs, &[]));
    assert!(u.errors.is_empty(), "{:?}", u.errors);
}

#[test]
fn withdrawals_alone_need_no_attributes() {
    let u = decode_update(&update(&[24, 10, 0, 1], &[], &[]));
    assert!(u.errors.is_empty());
    assert_eq!(u.withdrawn.len(), 1);
}

// §4: attribute lengths against the Total Path Attribute Length
#[test]
fn attribute_overrunning_the_list_is_treat_as_withdraw() {
    let mut attrs = mandatory();
    attrs.extend_from_slice(&[0x40, 5, 4, 0, 0]); // LOCAL_PREF claims 4 bytes, has 2
    let u = decode_update(&update(&[], &attrs, NLRI));
    assert!(u.treat_as_withdraw());
    assert_eq!(u.errors[0].malformation, Malformation::Overrun);
    assert_eq!(u.nlri.len(), 1, "the NLRI is still located");
}

#[test]
fn too_few_octets_for_an_attribute_header_is_treat_as_withdraw() {
    let mut attrs = mandatory();
    attrs.push(0x40);
    let u = decode_update(&update(&[], &attrs, NLRI));
    assert!(u.treat_as_withdraw());
    assert_eq!(u.errors[0].malformation, Malformation::Overrun);
}

#[test]
fn extended_length_header_cut_short_is_treat_as_withdraw() {
    let mut attrs = mandatory();
    attrs.extend_from_slice(&[0x50, 5, 0]);
    let u = decode_update(&update(&[], &attrs, NLRI));
    assert!(u.treat_as_withdraw());
}

#[test]
fn overrunning_mp_reach_resets_the_session() {
    let attrs = [mandatory(), vec![0x80, 14, 40, 0, 2, 1]].concat();
    let err = decode_err(&update(&[], &attrs, &[]));
    assert_eq!(err, DecodeError::MalformedAttributeList);
}

// RFC 4271 §6.3, unchanged by RFC 7606
#[test]
fn unrecognized_well_known_attribute_resets_the_session() {
    let err = decode_err(&update(
        &[],
        &[mandatory(), attr(0x40, 99, &[1])].concat(),
        NLRI,
    ));
    assert!(matches!(
        err,
        DecodeError::UnrecognizedWellKnown { type_code: 99, .. }
    ));
    let n = err.notification();
    assert_eq!(
        n.cause,
        Cause::Update(UpdateSubcode::UnrecognizedWellKnownAttribute)
    );
    assert_eq!(&n.data[..], &[0x40, 99, 1, 1]);
}

#[test]
fn unknown_optional_transitive_attribute_is_kept_and_passed_on_as_partial() {
    let attrs = [mandatory(), attr(0xc0, 99, &[1, 2]), attr(0x80, 98, &[3])].concat();
    let u = decode_update(&update(&[], &attrs, NLRI));
    assert!(u.errors.is_empty());
    assert_eq!(u.attributes.len(), 5);
    let mut out = u.attributes.clone();
    Update::prepare_unknown_for_propagation(&mut out);
    assert_eq!(
        out.len(),
        4,
        "the non-transitive unknown attribute is dropped"
    );
    let last = out.last().expect("attribute kept");
    assert!(last.is_partial());
    assert_eq!(
        last.value,
        AttrValue::Unknown {
            type_code: 99,
            value: vec![1, 2].into()
        }
    );
}

// §5.3 and RFC 4271 §6.3: the message's own lengths and NLRI fields
#[test]
fn withdrawn_length_overrunning_the_message_resets_the_session() {
    let mut m = update(&[], &[], &[]);
    m[19..21].copy_from_slice(&[0, 9]);
    assert_eq!(decode_err(&m), DecodeError::MalformedAttributeList);
}

#[test]
fn total_attribute_length_overrunning_the_message_resets_the_session() {
    let mut m = update(&[], &mandatory(), &[]);
    let len = mandatory().len() as u16 + 1;
    m[21..23].copy_from_slice(&len.to_be_bytes());
    let err = decode_err(&m);
    assert_eq!(err, DecodeError::MalformedAttributeList);
    assert_eq!(
        err.notification().cause,
        Cause::Update(UpdateSubcode::MalformedAttributeList)
    );
}

#[test]
fn prefix_longer_than_the_address_resets_the_session() {
    let err = decode_err(&update(&[], &mandatory(), &[33, 10, 0, 0, 0, 0]));
    assert!(matches!(err, DecodeError::InvalidNetworkField(_)));
    assert_eq!(
        err.notification().cause,
        Cause::Update(UpdateSubcode::InvalidNetworkField)
    );
}

#[test]
fn truncated_withdrawn_prefix_resets_the_session() {
    let err = decode_err(&update(&[24, 10, 0], &[], &[]));
    assert!(matches!(
        err,
        DecodeError::InvalidNetworkField(bgp::wire::NlriField::WithdrawnRoutes)
    ));
}

// §7.11 MP_REACH_NLRI and MP_UNREACH_NLRI, RFC 4760 §7
fn disabled(u: &Update) -> Vec<Family> {
    u.families_to_disable().collect()
}

#[test]
fn mp_reach_next_hop_length_mismatch_disables_the_family() {
    let mp = [&[0, 2, 1, 5][..], &[0; 5], &[0], &[32, 0x20, 1, 0xd, 0xb8]].concat();
    let u = decode_update(&update(
        &[],
        &[attr(0x80, 14, &mp), mandatory()].concat(),
        &[],
    ));
    assert_eq!(u.action(), Some(Action::AfiSafiDisable));
    assert_eq!(disabled(&u), vec![Family::IPV6_UNICAST]);
    assert_eq!(
        u.errors[0].notification().cause,
        Cause::Update(UpdateSubcode::OptionalAttributeError)
    );
}

#[test]
fn mp_reach_with_malformed_nlri_disables_the_family() {
    let mp = [&[0, 2, 1, 16][..], &V6_NEXT_HOP, &[0], &[129, 0x20]].concat();
    let u = decode_update(&update(
        &[],
        &[attr(0x80, 14, &mp), mandatory()].concat(),
        &[],
    ));
    assert_eq!(disabled(&u), vec![Family::IPV6_UNICAST]);
}

#[test]
fn mp_unreach_with_malformed_nlri_disables_the_family() {
    let u = decode_update(&update(&[], &attr(0x80, 15, &[0, 1, 1, 24, 10]), &[]));
    assert_eq!(disabled(&u), vec![Family::IPV4_UNICAST]);
}

#[test]
fn truncated_ipv6_withdrawal_disables_the_family() {
    let u = decode_update(&update(
        &[],
        &attr(0x80, 15, &[0, 2, 1, 64, 0x20, 1, 0xd]),
        &[],
    ));
    assert_eq!(disabled(&u), vec![Family::IPV6_UNICAST]);
}

#[test]
fn a_disabled_family_leaves_the_rest_of_the_update_to_apply() {
    // IPv4 NLRI field with good attributes, and a broken IPv6 MP_REACH_NLRI.
    let mp = [&[0, 2, 1, 16][..], &V6_NEXT_HOP, &[0], &[129, 0x20]].concat();
    let u = decode_update(&update(
        &[24, 10, 9, 9],
        &[attr(0x80, 14, &mp), mandatory()].concat(),
        NLRI,
    ));
    assert_eq!(disabled(&u), vec![Family::IPV6_UNICAST]);
    assert!(!u.treat_as_withdraw(), "the IPv4 announcement stands");
    assert_eq!(u.nlri.len(), 1);
    assert_eq!(u.withdrawn.len(), 1);
    assert_eq!(u.next_hop(), Some("192.0.2.1".parse().expect("address")));
}

#[test]
fn mp_reach_too_short_for_its_family_resets_the_session() {
    let err = decode_err(&update(&[], &attr(0x80, 14, &[0, 2]), &[]));
    assert!(
        matches!(err, DecodeError::Attribute(ref e) if e.action == Action::SessionReset && e.family.is_none())
    );
}

// §3 h: several errors, the strongest action wins
#[test]
fn the_strongest_of_several_actions_wins() {
    let extra = [attr(0x40, 6, &[1]), attr(0xc0, 8, &[0, 1, 0])].concat();
    let u = decode_update(&update(&[], &[mandatory(), extra].concat(), NLRI));
    let actions: Vec<Action> = u.errors.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        vec![Action::AttributeDiscard, Action::TreatAsWithdraw]
    );
    assert_eq!(u.action(), Some(Action::TreatAsWithdraw));
}

// §5.2: errors in an UPDATE without reachable NLRI
#[test]
fn treat_as_withdraw_without_reachable_nlri_resets_the_session() {
    let attrs = [attr(0x40, 1, &[7]), attr(0x40, 2, &[])].concat();
    let err = decode_err(&update(&[24, 10, 0, 1], &attrs, &[]));
    assert!(
        matches!(err, DecodeError::Attribute(ref e) if e.action == Action::SessionReset && e.attr == AttrType::Origin)
    );
    assert_eq!(
        err.notification().cause,
        Cause::Update(UpdateSubcode::InvalidOriginAttribute)
    );
}

#[test]
fn attribute_discard_without_reachable_nlri_is_not_escalated() {
    let u = decode_update(&update(&[], &attr(0x40, 6, &[1]), &[]));
    assert_eq!(u.action(), Some(Action::AttributeDiscard));
}

#[test]
fn an_overrun_that_may_hide_mp_reach_resets_the_session() {
    let err = decode_err(&update(&[], &[0x40, 1, 9, 0], &[]));
    assert!(
        matches!(err, DecodeError::Attribute(ref e) if e.malformation == Malformation::Overrun)
    );
}

#[test]
fn a_discarded_attribute_does_not_make_an_end_of_rib() {
    // Only a malformed ATOMIC_AGGREGATE: empty once it is discarded, but no End-of-RIB.
    let u = decode_update(&update(&[], &attr(0x40, 6, &[1]), &[]));
    assert!(u.attributes.is_empty());
    assert_eq!(u.as_end_of_rib(), None);
    // Nor does an empty MP_UNREACH_NLRI with a discarded attribute beside it.
    let attrs = [attr(0x80, 15, &[0, 2, 1]), attr(0x40, 6, &[1])].concat();
    assert_eq!(
        decode_update(&update(&[], &attrs, &[])).as_end_of_rib(),
        None
    );
}

#[test]
fn truncated_nlri_prefix_resets_the_session() {
    let err = decode_err(&update(&[], &mandatory(), &[24, 10, 1]));
    assert_eq!(
        err,
        DecodeError::InvalidNetworkField(bgp::wire::NlriField::Nlri)
    );
}

// §3 f: every error in ATOMIC_AGGREGATE or AGGREGATOR, flags too, is a discard
#[test]
fn aggregator_with_wrong_flags_is_discarded() {
    let (u, e) = single_error(&attr(0x40, 7, &[0, 0, 0xfd, 0xe9, 192, 0, 2, 1]));
    assert_eq!(e.malformation, Malformation::Flags);
    assert_eq!(e.action, Action::AttributeDiscard);
    assert!(!u.treat_as_withdraw());
}

#[test]
fn atomic_aggregate_with_wrong_flags_is_discarded() {
    let (_, e) = single_error(&attr(0xc0, 6, &[]));
    assert_eq!(e.action, Action::AttributeDiscard);
}

#[test]
fn empty_lists_are_treat_as_withdraw() {
    for code in [10u8, 16, 32] {
        let flags = if code == 10 { 0x80 } else { 0xc0 };
        let (u, e) = single_error(&attr(flags, code, &[]));
        assert!(u.treat_as_withdraw(), "type {code}");
        assert_eq!(e.malformation, Malformation::Length);
    }
}

#[test]
fn treat_as_withdraw_keeps_the_other_good_attributes_decodable() {
    let (u, _) = single_error(&[attr(0xc0, 8, &[0, 1, 0]), attr(0x40, 5, &[0, 0, 0, 7])].concat());
    assert_eq!(u.local_pref(), Some(7));
    assert_eq!(u.next_hop(), Some("192.0.2.1".parse().expect("address")));
}
