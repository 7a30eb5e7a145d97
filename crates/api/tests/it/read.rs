//! Queries answered by the read models: the ticket list (filters, text search, cursor pages,
//! what customers may see), the agent's next ticket, and reports as JSON and CSV, each reading
//! its own writes through `?min_position=`.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{each_backend, TestApi};

async fn create(api: &TestApi, customer: &Value, subject: &str, priority: &str) -> (String, u64) {
    let body = json!({
        "channel": "email",
        "requester": {"id": customer["customer_id"]},
        "subject": subject,
        "description": "details",
        "ticket_type": "question",
        "priority": priority,
    });
    let reply = api.post("/v1/tickets", &api.admin, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    (
        reply.body["ticket_id"].as_str().unwrap().to_owned(),
        reply.body["position"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn the_list_reads_its_writes_filters_searches_and_pages() {
    each_backend(|api| async move {
        let customer = api
            .post("/v1/admin/customers", &api.admin, json!({"name": "A"}))
            .await
            .body;
        let other = api
            .post("/v1/admin/customers", &api.admin, json!({"name": "B"}))
            .await
            .body;
        create(&api, &customer, "系统崩溃 system down", "urgent").await;
        create(&api, &customer, "Invoice question", "low").await;
        let (_, position) = create(&api, &other, "打印机坏了", "normal").await;

        let all = api
            .get(
                &format!("/v1/tickets?min_position={position}&limit=2"),
                &api.admin,
            )
            .await;
        assert_eq!(all.status, StatusCode::OK, "{}", all.body);
        assert_eq!(all.body["items"].as_array().unwrap().len(), 2);
        let cursor = all.body["next_cursor"].as_str().unwrap().to_owned();
        let rest = api
            .get(&format!("/v1/tickets?limit=2&cursor={cursor}"), &api.admin)
            .await;
        assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(rest.body["next_cursor"], Value::Null);

        let urgent = api.get("/v1/tickets?priority=urgent", &api.admin).await;
        assert_eq!(urgent.body["items"][0]["subject"], "系统崩溃 system down");
        let chinese = api
            .get("/v1/tickets?q=%E5%B4%A9%E6%BA%83", &api.admin)
            .await; // 崩溃
        assert_eq!(
            chinese.body["items"].as_array().unwrap().len(),
            1,
            "{}",
            chinese.body
        );
        let english = api.get("/v1/tickets?q=invoice", &api.admin).await;
        assert_eq!(english.body["items"][0]["subject"], "Invoice question");

        // The sentiment rule's flag shows in the list for staff, never for the customer.
        let (upset, _) = create(&api, &other, "Third time I write!", "normal").await;
        let flag = domain::Command::FlagCustomerUpset(domain::FlagCustomerUpset {
            rule_id: "sentiment".to_owned(),
            evidence: "Third time I write!".to_owned(),
        });
        let flagged = api::system_command(
            &api.state,
            domain::TicketId(upset.parse().unwrap()),
            &flag,
            uuid::Uuid::now_v7(),
            json!({"source": "test"}),
        )
        .await
        .unwrap();
        let api::SystemOutcome::Appended { position } = flagged else {
            panic!("the flag was not appended: {flagged:?}");
        };
        let staff = api
            .get(&format!("/v1/tickets?min_position={position}"), &api.admin)
            .await;
        let upset_of = |items: &Value| -> Vec<(String, Value)> {
            items
                .as_array()
                .unwrap()
                .iter()
                .map(|item| {
                    (
                        item["subject"].as_str().unwrap().to_owned(),
                        item["customer_upset"].clone(),
                    )
                })
                .collect()
        };
        let mut shown = upset_of(&staff.body["items"]);
        shown.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            shown,
            [
                ("Invoice question".to_owned(), json!(false)),
                ("Third time I write!".to_owned(), json!(true)),
                ("打印机坏了".to_owned(), json!(false)),
                ("系统崩溃 system down".to_owned(), json!(false)),
            ]
        );

        let token = api.token("customer", Some(&other["customer_id"])).await;
        let own = api.get("/v1/tickets", &token).await;
        let items = own.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "a customer sees only their own tickets");
        for item in items {
            assert!(
                item.get("priority").is_none()
                    && item.get("tags").is_none()
                    && item.get("customer_upset").is_none(),
                "{item}"
            );
        }

        // Filtering on an internal field would reveal it (found in review).
        let probing = api.get("/v1/tickets?tag=vip", &token).await;
        assert_eq!(probing.status, StatusCode::BAD_REQUEST, "{}", probing.body);
        let bad = api.get("/v1/tickets?cursor=garbage", &api.admin).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let unknown = api.get("/v1/tickets?colour=red", &api.admin).await;
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
        api
    })
    .await;
}

#[tokio::test]
async fn an_agent_gets_the_most_urgent_ticket_of_their_teams_next() {
    each_backend(|api| async move {
        let team = api
            .post("/v1/admin/teams", &api.admin, json!({"name": "Support"}))
            .await
            .body;
        let agent = api
            .post(
                "/v1/admin/agents",
                &api.admin,
                json!({"name": "Li", "teams": [team["team_id"]]}),
            )
            .await
            .body;
        let customer = api
            .post("/v1/admin/customers", &api.admin, json!({"name": "A"}))
            .await
            .body;
        let token = api.token("agent", Some(&agent["agent_id"])).await;
        let mut position = 0;
        let mut urgent_id = String::new();
        for (subject, priority) in [("a", "low"), ("b", "urgent"), ("c", "normal")] {
            let (ticket_id, _) = create(&api, &customer, subject, priority).await;
            let path = format!("/v1/tickets/{ticket_id}/commands");
            let assigned = api
                .post(
                    &path,
                    &api.admin,
                    json!({"type": "assign_team", "team": team["team_id"]}),
                )
                .await;
            position = assigned.body["position"].as_u64().unwrap();
            if priority == "urgent" {
                urgent_id = ticket_id;
            }
        }
        let next = api
            .get(&format!("/v1/queues/next?min_position={position}"), &token)
            .await;
        assert_eq!(next.status, StatusCode::OK, "{}", next.body);
        assert_eq!(next.body["next"]["ticket_id"], urgent_id.as_str());
        let customer_token = api.token("customer", Some(&customer["customer_id"])).await;
        assert_eq!(
            api.get("/v1/queues/next", &customer_token).await.status,
            StatusCode::FORBIDDEN
        );
        api
    })
    .await;
}

#[tokio::test]
async fn reports_come_as_json_and_csv() {
    each_backend(|api| async move {
        let customer = api.post("/v1/admin/customers", &api.admin, json!({"name": "A"})).await.body;
        let (_, position) = create(&api, &customer, "x", "normal").await;
        let path = format!("/v1/reports/summary?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z&min_position={position}");
        let json_report = api.get(&path, &api.admin).await;
        assert_eq!(json_report.status, StatusCode::OK, "{}", json_report.body);
        assert_eq!(json_report.body["created"], 1);
        // The manual clock says 09:00 UTC: the ticket lands in that hour's bucket.
        assert_eq!(json_report.body["created_by_hour"][9], 1);
        let csv = api.request(Method::GET, &path, Some(&api.admin), None, &[("accept", "text/csv")]).await;
        assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
        let text = csv.body.as_str().unwrap();
        assert!(text.starts_with("metric,value\n"), "{text}");
        assert!(text.contains("\ncreated,1\n") && text.contains("\ncreated_by_hour.9,1\n"), "{text}");
        let backwards = api.get("/v1/reports/summary?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z", &api.admin).await;
        assert_eq!(backwards.status, StatusCode::BAD_REQUEST);
        api
    })
    .await;
}
