//! Table definitions shared by both backends (kept by hand: one schema serves two databases).

diesel::table! {
    employers (id) {
        id -> Text,
        name -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    providers (id) {
        id -> Text,
        name -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        status -> Text,
        services -> Text,
        languages -> Text,
        regions -> Text,
        modalities -> Text,
        interpretation -> Bool,
        crisis_capable -> Bool,
        capacity -> Integer,
        serves_helping_professionals -> Bool,
    }
}

diesel::table! {
    employer_affiliations (employer_id, provider_id) {
        employer_id -> Text,
        provider_id -> Text,
    }
}

diesel::table! {
    provider_load_shards (provider_id, shard) {
        provider_id -> Text,
        shard -> Integer,
        held -> Integer,
    }
}

diesel::table! {
    provider_slots (provider_id, slot) {
        provider_id -> Text,
        slot -> Integer,
        referral_id -> Nullable<Text>,
    }
}

// A counter the directory's triggers bump on every change to what routing reads (providers,
// contracts, affiliations): one row, `id` 1.
diesel::table! {
    directory_version (id) {
        id -> Integer,
        version -> BigInt,
    }
}

diesel::table! {
    contracts (id) {
        id -> Text,
        employer_id -> Text,
        provider_id -> Text,
        priority -> Integer,
        starts_at -> Timestamp,
        ends_at -> Nullable<Timestamp>,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    api_clients (id) {
        id -> Text,
        name -> Text,
        role -> Text,
        employer_id -> Nullable<Text>,
        provider_id -> Nullable<Text>,
        secret_hash -> Text,
        created_at -> Timestamp,
        secret_rotated_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        occurred_at -> Timestamp,
        actor_client_id -> Nullable<Text>,
        actor_role -> Nullable<Text>,
        tenant_id -> Nullable<Text>,
        action -> Text,
        resource_type -> Text,
        resource_id -> Nullable<Text>,
        outcome -> Text,
        http_status -> Integer,
        request_id -> Text,
        source_addr -> Nullable<Text>,
    }
}

diesel::table! {
    audit_log_leaves (seq) {
        seq -> BigInt,
        event_id -> Text,
        leaf_hash -> Binary,
        pos_major -> BigInt,
        pos_minor -> Text,
    }
}

diesel::table! {
    audit_search (seq) {
        seq -> BigInt,
        occurred_max -> Timestamp,
        actor_client_id -> Nullable<Text>,
        action -> Nullable<Text>,
        outcome -> Nullable<Text>,
        resource_id -> Nullable<Text>,
    }
}

diesel::table! {
    audit_log_nodes (level, idx) {
        level -> Integer,
        idx -> BigInt,
        hash -> Binary,
    }
}

diesel::table! {
    audit_checkpoints (n) {
        n -> BigInt,
        tree_size -> BigInt,
        root_hash -> Binary,
        issued_at -> Timestamp,
        key_id -> Text,
        signature -> Binary,
    }
}

diesel::table! {
    referrals (id) {
        id -> Text,
        employer_id -> Text,
        service_type -> Text,
        urgency -> Text,
        modality -> Text,
        language -> Text,
        region -> Text,
        employee_ref_hmac -> Nullable<Text>,
        status -> Text,
        outcome -> Nullable<Text>,
        provider_id -> Nullable<Text>,
        offer_expires_at -> Nullable<Timestamp>,
        version -> Integer,
        status_token_hash -> Text,
        key_id -> Nullable<Text>,
        wrapped_key -> Nullable<Binary>,
        sealed_contact -> Nullable<Binary>,
        sealed_note -> Nullable<Binary>,
        routing_reasons -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
        erased_at -> Nullable<Timestamp>,
        sealed_preferences -> Nullable<Binary>,
    }
}

diesel::table! {
    referral_attempts (referral_id, provider_id) {
        referral_id -> Text,
        provider_id -> Text,
        offered_at -> Timestamp,
        outcome -> Nullable<Text>,
        reason -> Nullable<Text>,
        sealed_comment -> Nullable<Binary>,
    }
}

diesel::table! {
    provider_events (id) {
        id -> BigInt,
        provider_id -> Text,
        referral_id -> Text,
        kind -> Text,
        created_at -> Timestamp,
        txid -> Nullable<BigInt>,
    }
}

diesel::table! {
    idempotency_keys (client_id, idem_key) {
        client_id -> Text,
        idem_key -> Text,
        request_hash -> Text,
        referral_id -> Nullable<Text>,
        response_status -> Nullable<Integer>,
        response_sealed -> Nullable<Binary>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// A referral's data key, wrapped, and its employee-reference HMAC: kept apart from
    /// `referrals` so that destroying them can be physical (hash-partitioned on PostgreSQL).
    referral_keys (referral_id) {
        referral_id -> Text,
        key_id -> Text,
        wrapped_key -> Binary,
        employee_ref_hmac -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        provider_id -> Text,
        url -> Text,
        description -> Nullable<Text>,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_until -> Nullable<Timestamp>,
        status -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        status_changed_at -> Timestamp,
        secret_key_id -> Nullable<Text>,
        secret_sealed -> Nullable<Binary>,
        previous_secret_sealed -> Nullable<Binary>,
    }
}

diesel::table! {
    /// PostgreSQL partitions of `referral_keys` that lost a key and wait for their rewrite.
    referral_key_compactions (partition_name) {
        partition_name -> Text,
        deletions -> BigInt,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        endpoint_id -> Text,
        event_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        audited_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_attempts (delivery_id, attempt) {
        delivery_id -> BigInt,
        attempt -> Integer,
        endpoint_id -> Text,
        attempted_at -> Timestamp,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        latency_ms -> BigInt,
        next_attempt_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    operator_webhook_endpoints (id) {
        id -> Text,
        url -> Text,
        description -> Nullable<Text>,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_until -> Nullable<Timestamp>,
        status -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        status_changed_at -> Timestamp,
        secret_key_id -> Nullable<Text>,
        secret_sealed -> Nullable<Binary>,
        previous_secret_sealed -> Nullable<Binary>,
    }
}

diesel::table! {
    operator_webhook_deliveries (id) {
        id -> BigInt,
        endpoint_id -> Text,
        event_type -> Nullable<Text>,
        referral_id -> Nullable<Text>,
        urgency -> Nullable<Text>,
        created_at -> Timestamp,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        audited_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    operator_webhook_attempts (delivery_id, attempt) {
        delivery_id -> BigInt,
        attempt -> Integer,
        endpoint_id -> Text,
        attempted_at -> Timestamp,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        latency_ms -> BigInt,
        next_attempt_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(api_clients -> employers (employer_id));
diesel::joinable!(api_clients -> providers (provider_id));
diesel::joinable!(contracts -> employers (employer_id));
diesel::joinable!(provider_slots -> providers (provider_id));
diesel::joinable!(contracts -> providers (provider_id));
diesel::joinable!(employer_affiliations -> employers (employer_id));
diesel::joinable!(employer_affiliations -> providers (provider_id));
diesel::joinable!(referrals -> employers (employer_id));
diesel::joinable!(referral_attempts -> referrals (referral_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_deliveries -> provider_events (event_id));
diesel::joinable!(webhook_endpoints -> providers (provider_id));
diesel::joinable!(operator_webhook_deliveries -> operator_webhook_endpoints (endpoint_id));
diesel::allow_tables_to_appear_in_same_query!(
    employers,
    providers,
    api_clients,
    audit_events,
    audit_log_leaves,
    audit_search,
    audit_log_nodes,
    audit_checkpoints,
    contracts,
    employer_affiliations,
    provider_slots,
    provider_load_shards,
    referrals,
    referral_attempts,
    provider_events,
    idempotency_keys,
    referral_keys,
    referral_key_compactions,
    webhook_endpoints,
    webhook_deliveries,
    webhook_attempts,
    operator_webhook_endpoints,
    operator_webhook_deliveries,
    operator_webhook_attempts,
);
