//! `IdentityService.SetPerson`, `ListPeople`: where to reach the people transitions name (email,
//! Slack, Teams), kept by the SMO for the notifiers.

use opsgate_domain::Actor;
use opsgate_domain::contact::Contact;
use opsgate_proto::v1 as pb;
use opsgate_store::PersonRecord;
use tonic::{Request, Response, Status};

use super::Api;
use crate::convert;
use crate::error::{domain_status, invalid_argument, status};

/// Most names one listing may ask for.
const MAX_NAMES: usize = 1_000;

fn field(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

fn person(record: &PersonRecord) -> pb::Person {
    pb::Person {
        name: record.name.clone(),
        email: record.contact.email.clone().unwrap_or_default(),
        slack: record.contact.slack.clone().unwrap_or_default(),
        teams_webhook: record.contact.teams_webhook.clone().unwrap_or_default(),
        updated_at: Some(convert::timestamp(record.updated_at)),
        updated_by: record.updated_by.clone(),
    }
}

impl Api {
    pub(super) async fn set_person_rpc(
        &self,
        request: Request<pb::SetPersonRequest>,
    ) -> Result<Response<pb::SetPersonResponse>, Status> {
        let caller = self
            .auth
            .changer(&request, "opsgate.v1.IdentityService/SetPerson")
            .await?;
        let req = request.into_inner();
        let name = Actor::parse_field("name", &req.name).map_err(domain_status)?;
        let contact = Contact {
            email: field(&req.email),
            slack: field(&req.slack),
            teams_webhook: field(&req.teams_webhook),
        };
        contact.check().map_err(domain_status)?;
        let record = self
            .store
            .set_person(&name, &contact, &caller.actor)
            .await
            .map_err(status)?;
        tracing::info!(person = %name, by = %caller.actor, "contact details set");
        Ok(Response::new(pb::SetPersonResponse {
            person: Some(person(&record)),
        }))
    }

    pub(super) async fn list_people_rpc(
        &self,
        request: Request<pb::ListPeopleRequest>,
    ) -> Result<Response<pb::ListPeopleResponse>, Status> {
        self.auth
            .authorize(&request, "opsgate.v1.IdentityService/ListPeople")
            .await?;
        let req = request.into_inner();
        if req.names.len() > MAX_NAMES {
            return Err(invalid_argument(
                "names",
                format!("at most {MAX_NAMES} names at once"),
            ));
        }
        let names = req
            .names
            .iter()
            .map(|n| Actor::parse_field("names", n).map(|a| a.to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(domain_status)?;
        let people = self.store.people(&names).await.map_err(status)?;
        Ok(Response::new(pb::ListPeopleResponse {
            people: people.iter().map(person).collect(),
        }))
    }
}
