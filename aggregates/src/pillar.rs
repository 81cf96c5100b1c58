//! The glue every pillar aggregate shares, written once.

/// Implements cqrs-es's `Aggregate` for a pillar whose rules are an inherent
/// `fn decide(&self, Issued<Command>) -> Result<Vec<Event>, DomainError>` and whose fold is an
/// inherent `fn evolve(&mut self, Event)`: the command carries actor and time ([`crate::Issued`]),
/// errors are [`crate::DomainError`], there are no services, and `handle` records what `decide`
/// returns (cqrs-es's `EventSink` applies each event as it is written).
///
/// Usage: `pillar_aggregate!(Task, "task", TaskCommand, TaskEvent);`
#[macro_export]
macro_rules! pillar_aggregate {
    ($aggregate:ty, $type_name:literal, $command:ty, $event:ty) => {
        impl ::cqrs_es::Aggregate for $aggregate {
            const TYPE: &'static str = $type_name;
            type Command = $crate::Issued<$command>;
            type Event = $event;
            type Error = $crate::DomainError;
            type Services = ();

            async fn handle(
                &mut self,
                command: Self::Command,
                _services: &Self::Services,
                sink: &::cqrs_es::event_sink::EventSink<Self>,
            ) -> Result<(), Self::Error> {
                for event in self.decide(command)? {
                    sink.write(event, self).await;
                }
                Ok(())
            }

            fn apply(&mut self, event: Self::Event) {
                self.evolve(event)
            }
        }
    };
}
