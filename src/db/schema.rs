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

diesel::joinable!(api_clients -> employers (employer_id));
diesel::joinable!(api_clients -> providers (provider_id));
diesel::allow_tables_to_appear_in_same_query!(employers, providers, api_clients, audit_events);
