pub mod tiny_bert;
