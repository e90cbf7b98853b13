fn main() {
    print!("{}", zonegate::crdgen::crd_yaml());
}
